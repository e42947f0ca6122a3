"""``confroute-probe``: train the bundle's fused probes, show what they were trained on, make data.

    confroute-probe ladder --out ladder.jsonl --n 300 --seed 0
    confroute-probe train --bundle DIR --data ladder.jsonl --label correct
    confroute-probe train --bundle DIR --data qa.jsonl --label se --samples 10 --output tbg
    confroute-probe train --bundle DIR --data qa.jsonl --label dse --strong-bundle CLOUD_DIR --tau 0.0
    confroute-probe train --bundle DIR --data qa.jsonl --label route --strong-bundle CLOUD_DIR --output tbg
    confroute-probe show --bundle DIR
    confroute-probe router --data ../shared/data            # the shipped router probe (docs/router-probe.md)
    confroute-probe cloud-outcomes --data ../shared/data    # record the cloud's outcomes for its recipe
    confroute-probe install --bundle DIR                    # write the shipped router probe into a bundle

``train`` runs the edge model over the data (one greedy answer per question; with ``se``/``dse`` also
``--samples`` sampled answers, for ``dse`` the strong model's samples, and for ``route`` the strong model's
greedy answers unless the data records ``cloud_correct``), fits one logistic probe per
output (layers and L2 chosen by cross-validation on the training split), reports the validation AUROC and
writes the probes into the bundle (unless ``--dry-run``). The data format is described in
:mod:`confroute.probes.data`. Probes score "keep on the edge" (1 = confident), as the runtime reads them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from confroute.bundle.store import load_bundle, sha256_file
from confroute.errors import ConfrouteError
from confroute.modelkit.cloud_model import cloud_bundle_dir
from confroute.paths import cache_dir, default_bundle_dir
from confroute.probes.data import read_examples, write_examples
from confroute.probes.labels import LABEL_KINDS
from confroute.probes.router import OUTCOMES_FILE, RouterRecipe
from confroute.probes.shipped import SHIPPED_FILE
from confroute.probes.train import ProbeOutput, TrainConfig, train_probes, write_report
from confroute.uncertainty.ladder import arithmetic_ladder
from confroute.version import add_version_flag

OUTPUTS: dict[str, tuple[ProbeOutput, ...]] = {"tbg": ("tbg",), "slt": ("slt",), "both": ("tbg", "slt")}


@dataclasses.dataclass(frozen=True)
class ProbeCliConfig:
    command: str
    bundle: Path | None = None
    data: Path | None = None
    strong_bundle: Path | None = None
    out: Path | None = None
    n: int = 0
    seed: int = 0
    threads: int = 2
    dry_run: bool = False
    embed_text: bool = False
    cache: Path | None = None
    install: bool = False
    outcomes: Path | None = None
    recipe: RouterRecipe = dataclasses.field(default_factory=RouterRecipe)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> ProbeCliConfig:
    parser = argparse.ArgumentParser(prog="confroute-probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_flag(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train probes and write them into the bundle")
    train.add_argument("--bundle", type=Path, required=True, help="the edge model bundle (modified in place)")
    train.add_argument("--data", type=Path, required=True, help="JSONL training set")
    train.add_argument("--label", choices=LABEL_KINDS, required=True)
    train.add_argument("--strong-bundle", type=Path,
                       help="the strong (cloud) model bundle (dse labels; route labels without cloud_correct)")
    train.add_argument("--output", choices=sorted(OUTPUTS), default="both", help="which probe(s) to train")
    train.add_argument("--val-frac", type=float, default=0.3, help="validation share (default 0.3)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--folds", type=int, default=3, help="cross-validation folds for the selection")
    train.add_argument("--max-new-tokens", type=int, default=32)
    train.add_argument("--samples", type=int, default=10, help="sampled answers per question (se/dse)")
    train.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (se/dse)")
    train.add_argument("--top-p", type=float, default=1.0)
    train.add_argument("--se-variant", choices=["discrete", "likelihood"], default="discrete")
    train.add_argument("--tau", type=float, default=0.0, help="dSE threshold: weak wins when dSE > tau")
    train.add_argument("--embed-text", action="store_true",
                       help="cluster free-text samples by all-MiniLM-L6-v2 embeddings (default: normalised text)")
    train.add_argument("--similarity", type=float, default=0.9, help="cosine similarity that joins a cluster")
    train.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    train.add_argument("--dry-run", action="store_true", help="report, but do not write the bundle")
    install = commands.add_parser("install", help="write the shipped router probe into a bundle it fits")
    install.add_argument("--bundle", type=Path, help="default: the 8-bit SmolLM2 bundle in the cache")
    show = commands.add_parser("show", help="print the probes' provenance from the manifest")
    show.add_argument("--bundle", type=Path, required=True)
    ladder = commands.add_parser("ladder", help="write the arithmetic difficulty ladder as JSONL")
    ladder.add_argument("--out", type=Path, required=True)
    ladder.add_argument("--n", type=int, required=True)
    ladder.add_argument("--seed", type=int, default=0)
    _router_parsers(commands)
    args = parser.parse_args(argv)
    if args.command in ("router", "cloud-outcomes"):
        return _router_config(args, env)
    if args.command == "show":
        return ProbeCliConfig("show", bundle=args.bundle)
    if args.command == "install":
        return ProbeCliConfig("install", bundle=args.bundle or default_bundle_dir(cache_dir(env), quantized=True))
    if args.command == "ladder":
        return ProbeCliConfig("ladder", out=args.out, n=args.n, seed=args.seed)
    if args.label == "dse" and args.strong_bundle is None:
        parser.error("--label dse needs --strong-bundle (the model the edge model is compared with)")
    config = TrainConfig(label=args.label, outputs=OUTPUTS[args.output], val_frac=args.val_frac, seed=args.seed,
                         folds=args.folds, max_new_tokens=args.max_new_tokens, samples=args.samples,
                         temperature=args.temperature, top_p=args.top_p, se_variant=args.se_variant, tau=args.tau,
                         similarity=args.similarity)
    return ProbeCliConfig("train", bundle=args.bundle, data=args.data, strong_bundle=args.strong_bundle,
                          seed=args.seed, threads=args.threads, dry_run=args.dry_run, embed_text=args.embed_text,
                          cache=cache_dir(env), train=config)


def _router_parsers(commands: Any) -> None:
    router = commands.add_parser("router", help="train the router probe shipped with confroute (route label)")
    outcomes = commands.add_parser("cloud-outcomes", help="record the cloud model's outcomes on the recipe")
    for sub in (router, outcomes):
        sub.add_argument("--data", type=Path, help="the data pack (default ../shared/data)")
        sub.add_argument("--n-ladder", type=int, default=RouterRecipe.n_ladder)
        sub.add_argument("--n-mc", type=int, default=RouterRecipe.n_mc, help="questions per multiple-choice set")
        sub.add_argument("--seed", type=int, default=RouterRecipe.seed)
        sub.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    router.add_argument("--bundle", type=Path, help="the edge bundle (default: the 8-bit SmolLM2 bundle)")
    router.add_argument("--outcomes", type=Path, help="recorded cloud outcomes (default: the shipped file)")
    router.add_argument("--out", type=Path, help=f"where the probe goes (default: the package's {SHIPPED_FILE})")
    router.add_argument("--install", action="store_true", help="also write the probe into --bundle")
    outcomes.add_argument("--strong-bundle", type=Path, help="the cloud model's bundle (default: the local one)")
    outcomes.add_argument("--out", type=Path, help=f"default: the package's {OUTCOMES_FILE}")


def _router_config(args: argparse.Namespace, env: Mapping[str, str]) -> ProbeCliConfig:
    cache = cache_dir(env)
    recipe = RouterRecipe(n_ladder=args.n_ladder, n_mc=args.n_mc, seed=args.seed)
    data = args.data or Path(env.get("CONFROUTE_DATA_DIR", "../shared/data"))
    package = Path(__file__).resolve().parent
    if args.command == "cloud-outcomes":
        return ProbeCliConfig("cloud-outcomes", data=data, strong_bundle=args.strong_bundle or cloud_bundle_dir(cache),
                              out=args.out or package / OUTCOMES_FILE, threads=args.threads, recipe=recipe)
    return ProbeCliConfig("router", bundle=args.bundle or default_bundle_dir(cache, quantized=True), data=data,
                          out=args.out or package / SHIPPED_FILE, threads=args.threads, install=args.install,
                          outcomes=args.outcomes, recipe=recipe)


def run_router(config: ProbeCliConfig) -> None:
    from confroute.engine import Engine, RuntimeOptions
    from confroute.probes.router import held_out, read_outcomes, recipe_items, shipped_probe, train_router
    from confroute.probes.shipped import install_shipped, save_shipped

    assert config.bundle is not None and config.data is not None and config.out is not None
    engine = Engine(config.bundle, RuntimeOptions(intra_op_threads=config.threads))
    items = recipe_items(config.data, config.recipe)
    outcomes, digest = read_outcomes(config.outcomes)
    report = train_router(engine, items, outcomes, config.recipe, say=_say)
    _say(f"collected in {report.collect_seconds:.1f} s ({report.generated_tokens} greedy tokens)")
    measured = held_out(report, items, outcomes)
    _say(f"held out ({measured['n']}): AUROC {measured['auroc']:.3f}; " + "; ".join(
        f"{mode}: APGR {measured[mode]['apgr']:.3f}, CPT(50%) {measured[mode]['cpt50']:.1%}"
        for mode in ("pre", "post") if mode in measured))
    probe = shipped_probe(report, engine, config.recipe, config.data, outcomes, digest, measured,
                          datetime.now(timezone.utc).isoformat(timespec="seconds"))
    save_shipped(config.out, probe)
    _say(f"wrote {config.out} ({config.out.stat().st_size} bytes)")
    if config.install:
        _say(install_shipped(config.bundle, probe))


def run_cloud_outcomes(config: ProbeCliConfig) -> None:
    from confroute.engine import Engine, RuntimeOptions
    from confroute.probes.router import recipe_items, record_outcomes

    assert config.strong_bundle is not None and config.data is not None and config.out is not None
    items = recipe_items(config.data, config.recipe)
    strong = Engine(config.strong_bundle, RuntimeOptions(intra_op_threads=config.threads))
    _say(f"answering {len(items)} questions with {strong.manifest.model_id}")
    outcomes = record_outcomes(strong, items, config.recipe.max_new_tokens, _every_tenth(len(items)))
    config.out.write_text(json.dumps(outcomes.to_json(), indent=0, sort_keys=True) + "\n", encoding="utf-8")
    _say(f"wrote {config.out}: cloud accuracy {sum(outcomes.correct.values()) / len(items):.3f}")


def _every_tenth(total: int) -> Callable[[int, int], None]:
    def progress(done: int, _total: int) -> None:
        if done % max(1, total // 10) == 0 or done == total:
            _say(f"cloud: {done}/{total}")

    return progress


def run_train(config: ProbeCliConfig) -> None:
    from confroute.engine import Engine, RuntimeOptions

    assert config.bundle is not None and config.data is not None
    examples = read_examples(config.data)
    options = RuntimeOptions(intra_op_threads=config.threads)
    engine = Engine(config.bundle, options)
    strong = Engine(config.strong_bundle, options) if config.strong_bundle else None
    embedder = None
    if config.embed_text and config.cache is not None:
        from confroute.embeddings.minilm import load_minilm

        embedder = load_minilm(config.cache, _say)
    report = train_probes(engine, examples, config.train, strong=strong, embedder=embedder, say=_say)
    _say(f"collected in {report.collect_seconds:.1f} s ({report.generated_tokens} greedy tokens)")
    if config.dry_run:
        _say("dry run: the bundle is unchanged")
        return
    source = {"file": config.data.name, "sha256": sha256_file(config.data)}
    write_report(config.bundle, report, data_source=source,
                 trained_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    _say(f"wrote {', '.join(report.fits)} into {config.bundle}")


def run_install(config: ProbeCliConfig) -> None:
    from confroute.probes.shipped import install_shipped

    assert config.bundle is not None
    _say(install_shipped(config.bundle))


def run_show(config: ProbeCliConfig) -> None:
    assert config.bundle is not None
    probe = load_bundle(config.bundle, verify=False).probe
    print(f"probe layers {probe.first_layer}..{probe.last_layer} ({probe.feature_dim} features)")
    for output in probe.outputs:
        trained = probe.trained.get(output)
        print(f"{output}: " + ("untrained" if trained is None else json.dumps(trained, indent=2, sort_keys=True)))


def run_ladder(config: ProbeCliConfig) -> None:
    assert config.out is not None
    count = write_examples(config.out, (item.to_json() for item in arithmetic_ladder(config.n, config.seed)))
    _say(f"wrote {count} questions to {config.out}")


def _say(message: str) -> None:
    print(f"[confroute-probe] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv, dict(os.environ))
    try:
        {"train": run_train, "show": run_show, "ladder": run_ladder, "router": run_router,
         "cloud-outcomes": run_cloud_outcomes, "install": run_install}[config.command](config)
    except ConfrouteError as exc:
        print(f"confroute-probe: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
