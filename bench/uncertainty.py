"""Benchmark B: the live edge model's confidence signals against its real errors, and the cascade they drive.

``python -m bench.uncertainty [--quick] [--json PATH] [--png-dir DIR]``

SmolLM2-135M-Instruct (8-bit bundle, the device default) answers the arithmetic ladder and multiple-choice
questions by generation. For each signal: AUROC vs error, AURAC, ECE after isotonic calibration (fitted on the
training split), and its cost as a ratio to one plain generation measured in the same run. Probes are
trained on the training split; every number reported comes from the held-out test split. The cascade sends
the least confident test queries to the local cloud model (Qwen2.5-Coder-0.5B-Instruct 8-bit, run directly
with the same engine Triton's bundle model uses) and reports APGR and CPT(50%) per dataset.
The default set (480 ladder questions, 120 each of ARC-Easy and PIQA, half held out) takes about 30 minutes
on 2 cores; ``--quick`` a few.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.cpu import this_cpu
from bench.readme_block import links_from, page_of, replace_block
from bench.uncert.collect import CloudRecord, EdgeRecord, collect_cloud, collect_edge
from bench.uncert.evaluate import score_cascade, score_signal
from bench.uncert.items import Item, load_items, split
from bench.uncert.markdown import render
from bench.uncert.plot import plot_cascades
from bench.uncert.signals import (
    HEAD_SIGNALS,
    PROBE_SIGNALS,
    SE_SIGNALS,
    ProbeResult,
    head_signals,
    semantic_entropies,
    sep_labels,
    train_probe,
)
from confroute.bundle.store import needs_export
from confroute.engine import Engine, SamplingParams
from confroute.modelkit.cloud_model import cloud_bundle_dir
from confroute.paths import cache_dir, default_bundle_dir
from confroute.probes.labels import route_labels
from confroute.probes.selection import FeatureLayout

REPO = Path(__file__).resolve().parent.parent
SAMPLE_BLOCKS = (5, 5)  # SE with N=5 reads the first block, N=10 both


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: Path
    edge_bundle: Path
    cloud_bundle: Path | None
    n_ladder: int
    n_mc: int
    test_frac: float
    max_new_tokens: int
    temperature: float
    seed: int
    json_path: Path | None
    png_dir: Path | None
    readme: bool
    command: str
    from_json: Path | None


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.uncertainty", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (a few minutes)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--png-dir", type=Path, help="write the cascade curves here (PNG)")
    parser.add_argument("--from-json", type=Path, help="re-report a run saved with --json (no models run)")
    parser.add_argument("--readme", action="store_true",
                        help="regenerate the bench.uncertainty block of docs/routing-quality.md (curves: docs/img/)")
    parser.add_argument("--data", type=Path, help="the shared data folder (default ../shared/data)")
    parser.add_argument("--edge-bundle", type=Path, help="default: SmolLM2-135M 8-bit, built on first use")
    parser.add_argument("--cloud-bundle", type=Path, help="default: the local cloud model, built on first use")
    parser.add_argument("--no-cloud", action="store_true", help="skip the cascade (no cloud model)")
    parser.add_argument("--n-ladder", type=int, help="arithmetic questions (default 480; quick 72)")
    parser.add_argument("--n-mc", type=int, help="questions per multiple-choice set (default 120; quick 18)")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cache = cache_dir(os.environ)
    data = args.data or Path(os.environ.get("CONFROUTE_DATA_DIR", REPO.parent / "shared" / "data"))
    cloud = None if args.no_cloud else args.cloud_bundle or cloud_bundle_dir(cache)
    return Config(
        data_dir=data, edge_bundle=args.edge_bundle or default_bundle_dir(cache, quantized=True), cloud_bundle=cloud,
        n_ladder=args.n_ladder or (72 if args.quick else 480), n_mc=args.n_mc or (18 if args.quick else 120),
        test_frac=0.5, max_new_tokens=args.max_new_tokens, temperature=1.0, seed=args.seed,
        json_path=args.json, png_dir=args.png_dir or (REPO / "docs" / "img" if args.readme else None),
        readme=args.readme, command="python -m bench.uncertainty" + (" --quick" if args.quick else ""),
        from_json=args.from_json)


def ensure_bundles(config: Config) -> None:
    """Builds the default bundles in child processes on first use (export tooling stays out of this one)."""
    if needs_export(config.edge_bundle):
        _say("building the edge bundle (first use, or an older graph)")
        subprocess.run([sys.executable, "-m", "confroute.modelkit.cli", "--int8"], check=True)
    if config.cloud_bundle is not None and needs_export(config.cloud_bundle):
        _say("building the cloud bundle (first use, or an older graph: ~500 MB download, a few minutes)")
        subprocess.run([sys.executable, "-m", "confroute.modelkit.cloud_model"], check=True)


def run(config: Config) -> dict[str, Any]:
    ensure_bundles(config)
    items = load_items(config.data_dir, config.n_ladder, config.n_mc, config.seed)
    train_idx, test_idx = split(items, config.test_frac, config.seed)
    engine = Engine(config.edge_bundle)
    edge = collect_edge(engine, items, max_new_tokens=config.max_new_tokens, blocks=SAMPLE_BLOCKS,
                        temperature=config.temperature, seed=config.seed, progress=_progress())
    test_items = [items[i] for i in test_idx]
    cloud = _cloud(config, items)
    signals, probes = _signals(engine, items, edge, cloud, train_idx, test_idx, config.seed)
    fused = _fused_check(config.edge_bundle, probes, test_items, [edge[i] for i in test_idx], config)
    test_cloud = None if cloud is None else [cloud[i] for i in test_idx]
    return _report(config, items, edge, test_cloud, signals, probes, train_idx, test_idx, fused)


def _cloud(config: Config, items: list[Item]) -> list[CloudRecord] | None:
    if config.cloud_bundle is None:
        return None
    engine = Engine(config.cloud_bundle)
    return collect_cloud(engine, items, max_new_tokens=config.max_new_tokens, progress=_progress())


def _signals(engine: Engine, items: list[Item], edge: list[EdgeRecord], cloud: list[CloudRecord] | None,
             train_idx: list[int], test_idx: list[int], seed: int
             ) -> tuple[dict[str, np.ndarray], dict[str, ProbeResult]]:
    """Every signal as a confidence over all items (probe scores: cross-fitted on train, fitted on test)."""
    signals: dict[str, np.ndarray] = dict(head_signals(edge))
    entropies = semantic_entropies(items, edge)
    signals |= {name: -value for name, value in entropies.items()}
    probe = engine.manifest.probe
    layout = FeatureLayout(probe.first_layer, probe.last_layer,
                           probe.feature_dim // (probe.last_layer - probe.first_layer + 1))
    correct = np.array([r.correct for r in edge], np.int8)
    label_sets = {"probe": correct[train_idx], "sep": sep_labels(entropies["se10"][train_idx])}
    if cloud is not None:
        label_sets["route"] = route_labels(correct, [c.correct for c in cloud]).labels[train_idx]
    probes: dict[str, ProbeResult] = {}
    for name, labels in label_sets.items():
        for position in ("tbg", "slt"):
            feats = np.stack([getattr(r, f"{position}_features") for r in edge])
            _say(f"training {name}_{position} on {len(train_idx)} items")
            result = train_probe(feats[train_idx], labels, feats[test_idx], layout, seed=seed)
            probes[f"{name}_{position}"] = result
            values = np.zeros(len(items))
            values[train_idx], values[test_idx] = result.train, result.test
            signals[f"{name}_{position}"] = values
    return signals, probes


def _fused_check(bundle: Path, probes: dict[str, ProbeResult], items: list[Item], edge: list[EdgeRecord],
                 config: Config, n: int = 4) -> dict[str, float]:
    """Writes the correctness probes into a copy of the bundle and checks the graph's scores against numpy."""
    from confroute.bundle.probe import write_probe

    with tempfile.TemporaryDirectory(prefix="confroute-probe-") as tmp:
        copy = Path(shutil.copytree(bundle, Path(tmp) / "bundle"))
        for position in ("tbg", "slt"):
            result = probes[f"probe_{position}"]
            write_probe(copy, position, result.weight.astype(np.float32), result.bias, {"label": "correct",
                        "data": "bench.uncertainty training split"})
        engine = Engine(copy)
        params = SamplingParams(max_new_tokens=config.max_new_tokens)
        diffs = {"tbg": 0.0, "slt": 0.0}
        for item, record in zip(items[:n], edge[:n], strict=False):
            gen = engine.chat(item.example.messages, params)
            for position in ("tbg", "slt"):
                result = probes[f"probe_{position}"]
                features = getattr(record, f"{position}_features").astype(np.float64)
                numpy_score = 1.0 / (1.0 + np.exp(-(features @ result.weight + result.bias)))
                graph = getattr(gen, position)
                assert graph is not None
                diffs[position] = max(diffs[position], abs(graph - float(numpy_score)))
    return {f"max_abs_diff_{k}": v for k, v in diffs.items()}


def _report(config: Config, items: list[Item], edge: list[EdgeRecord], cloud: list[CloudRecord] | None,
            signals: dict[str, np.ndarray], probes: dict[str, ProbeResult], train_idx: list[int],
            test_idx: list[int], fused: dict[str, float]) -> dict[str, Any]:
    correct = np.array([r.correct for r in edge], np.float64)
    greedy_s = float(sum(edge[i].greedy_s for i in test_idx))
    costs = _costs(edge, test_idx, greedy_s)
    per_signal = {}
    for name in (*HEAD_SIGNALS, *PROBE_SIGNALS, *SE_SIGNALS):
        if name not in signals:
            continue
        values = signals[name]
        score = score_signal(values[train_idx], correct[train_idx], values[test_idx], correct[test_idx],
                             is_probability=name in ("max_prob", *PROBE_SIGNALS))
        per_signal[name] = {"auroc": score.auroc, "aurac": score.aurac, "ece": score.ece,
                            "ece_crossfit": score.ece_crossfit, "ece_uncalibrated": score.ece_raw,
                            "cost_ratio": costs[name]}
    datasets = _datasets(items, test_idx, correct, cloud, signals)
    report = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()},
        **this_cpu().to_json(), "n_train": len(train_idx), "n_test": len(test_idx),
        "edge_accuracy_test": float(correct[test_idx].mean()),
        "edge_accuracy_by_dataset": {d: float(np.mean([correct[i] for i in test_idx if items[i].dataset == d]))
                                     for d in dict.fromkeys(items[i].dataset for i in test_idx)},
        "signals": per_signal, "datasets": datasets,
        "items": _items(items, test_idx, correct, signals),
        "probes": {name: _probe_info(result) for name, result in probes.items()},
        "fused_probe_check": fused,
        "plain_generation_ms": 1000.0 * greedy_s / max(len(test_idx), 1),
        "cost_note": ("head and probes are outputs of the generation's own forward pass, so their cost ratio is "
                      "1.00 by construction; bench.edge_generation measures what the head adds to a step "
                      "(1.7-3.2%). Semantic entropy's samples reuse the greedy answer's prefill."),
    }
    if cloud is not None:
        report["cloud_accuracy_test"] = float(np.mean([c.correct for c in cloud]))
    return report


def _items(items: list[Item], test_idx: list[int], correct: np.ndarray,
           signals: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per item: split, correctness and every signal (so a saved run can be re-analysed)."""
    test = set(test_idx)
    return [{"id": item.item_id, "dataset": item.dataset, "split": "test" if i in test else "train",
             "edge_correct": bool(correct[i]), "signals": {name: float(v[i]) for name, v in signals.items()}}
            for i, item in enumerate(items)]


def _costs(edge: list[EdgeRecord], test_idx: list[int], greedy_s: float) -> dict[str, float]:
    five = sum(edge[i].sample_s[0] for i in test_idx)
    ten = sum(edge[i].sample_s[1] for i in test_idx)
    costs = {name: 1.0 for name in (*HEAD_SIGNALS, *PROBE_SIGNALS)}
    costs |= {"se5": (greedy_s + five) / greedy_s, "se10": (greedy_s + ten) / greedy_s,
              "se10_lik": (greedy_s + ten) / greedy_s}
    return costs


def _datasets(items: list[Item], test_idx: list[int], correct: np.ndarray, cloud: list[CloudRecord] | None,
              signals: dict[str, np.ndarray]) -> dict[str, Any]:
    if cloud is None:
        return {}
    cloud_correct = np.array([c.correct for c in cloud], np.float64)
    groups = {"all": list(range(len(test_idx)))}
    for dataset in dict.fromkeys(items[i].dataset for i in test_idx):
        groups[dataset] = [k for k, i in enumerate(test_idx) if items[i].dataset == dataset]
    out: dict[str, Any] = {}
    for group, members in groups.items():
        edge_q = correct[test_idx][members]
        cloud_q = cloud_correct[members]
        entry: dict[str, Any] = {"n": len(members), "edge_accuracy": float(edge_q.mean()),
                                 "cloud_accuracy": float(cloud_q.mean()), "signals": {}}
        for name, values in signals.items():
            cascade = score_cascade(values[test_idx][members], edge_q, cloud_q)
            if cascade is not None:
                entry["signals"][name] = {"apgr": cascade.apgr, "cpt50": cascade.cpt50, "cpt80": cascade.cpt80,
                                          "rates": cascade.curve.rates.tolist(),
                                          "quality": cascade.curve.quality.tolist()}
        out[group] = entry
    return out


def _probe_info(result: ProbeResult) -> dict[str, Any]:
    if result.fit is None:
        return {"trained": False}
    return {"trained": True, "layers": list(result.fit.layers), "l2": result.fit.l2,
            "cv_auroc": result.fit.cv_auroc, "val_auroc": result.fit.val_auroc}


def print_table(report: dict[str, Any]) -> None:
    print(f"\nedge accuracy (test): {report['edge_accuracy_test']:.3f} "
          f"{json.dumps({k: round(v, 3) for k, v in report['edge_accuracy_by_dataset'].items()})}"
          + (f"   cloud accuracy (test): {report['cloud_accuracy_test']:.3f}" if "cloud_accuracy_test" in report
             else ""))
    print(f"train {report['n_train']} / test {report['n_test']} items; one plain generation "
          f"{report['plain_generation_ms']:.0f} ms\n")
    all_group = report["datasets"].get("all", {}).get("signals", {})
    print(f"{'signal':<14}{'AUROC':>8}{'AURAC':>8}{'ECE':>8}{'cost':>7}{'APGR':>8}{'CPT50':>8}")
    for name, s in report["signals"].items():
        cascade = all_group.get(name, {})
        print(f"{name:<14}{s['auroc']:>8.3f}{s['aurac']:>8.3f}{s['ece']:>8.3f}{s['cost_ratio']:>6.2f}x"
              f"{cascade.get('apgr', float('nan')):>8.3f}{cascade.get('cpt50', float('nan')):>8.1%}")
    for dataset, entry in report["datasets"].items():
        if dataset == "all":
            continue
        best = max(entry["signals"].items(), key=lambda kv: kv[1]["apgr"], default=None)
        if best:
            print(f"  {dataset:<10} edge {entry['edge_accuracy']:.2f} cloud {entry['cloud_accuracy']:.2f}  "
                  f"best APGR {best[1]['apgr']:.3f} ({best[0]}), CPT50 {best[1]['cpt50']:.1%}")
    check = {k: f"{v:.1e}" for k, v in report["fused_probe_check"].items()}
    print(f"\nfused probes, graph vs numpy: {json.dumps(check)}")


def _progress() -> Any:
    started = time.perf_counter()

    def tell(stage: str, done: int, total: int) -> None:
        if done == total or done % 20 == 0:
            elapsed = time.perf_counter() - started
            eta = elapsed / done * (total - done)
            print(f"[bench.uncertainty] {stage}: {done}/{total} ({elapsed:.0f} s, ~{eta:.0f} s left)",
                  file=sys.stderr, flush=True)

    return tell


def _say(message: str) -> None:
    print(f"[bench.uncertainty] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    report = json.loads(config.from_json.read_text("utf-8")) if config.from_json else run(config)
    print_table(report)
    pngs: list[Path] = []
    if config.png_dir is not None and report["datasets"]:
        pngs = plot_cascades(report, config.png_dir)
        _say(f"wrote {', '.join(str(p) for p in pngs)}")
    if config.readme:
        page = page_of("bench.uncertainty")  # --png-dir may be given relative to the working directory
        replace_block(page, "bench.uncertainty", render(report, links_from(page, pngs), config.command))
        _say(f"regenerated the bench.uncertainty block of {page.relative_to(REPO)}")
    if config.json_path is not None:
        config.json_path.parent.mkdir(parents=True, exist_ok=True)
        config.json_path.write_text(json.dumps(report, indent=1, default=float))
        _say(f"wrote {config.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
