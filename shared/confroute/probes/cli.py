"""``confroute-probe``: train the bundle's fused probes, show what they were trained on, make data.

    confroute-probe ladder --out ladder.jsonl --n 300 --seed 0
    confroute-probe train --bundle DIR --data ladder.jsonl --label correct
    confroute-probe train --bundle DIR --data qa.jsonl --label se --samples 10 --output tbg
    confroute-probe train --bundle DIR --data qa.jsonl --label dse --strong-bundle CLOUD_DIR --tau 0.0
    confroute-probe show --bundle DIR

``train`` runs the edge model over the data (one greedy answer per question; with ``se``/``dse`` also
``--samples`` sampled answers, and for ``dse`` the strong model's samples), fits one logistic probe per
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
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from confroute.bundle.store import load_bundle, sha256_file
from confroute.errors import ConfrouteError
from confroute.paths import cache_dir
from confroute.probes.data import read_examples, write_examples
from confroute.probes.labels import LABEL_KINDS
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
    train.add_argument("--strong-bundle", type=Path, help="the strong model bundle (dse labels)")
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
    show = commands.add_parser("show", help="print the probes' provenance from the manifest")
    show.add_argument("--bundle", type=Path, required=True)
    ladder = commands.add_parser("ladder", help="write the arithmetic difficulty ladder as JSONL")
    ladder.add_argument("--out", type=Path, required=True)
    ladder.add_argument("--n", type=int, required=True)
    ladder.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "show":
        return ProbeCliConfig("show", bundle=args.bundle)
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
        {"train": run_train, "show": run_show, "ladder": run_ladder}[config.command](config)
    except ConfrouteError as exc:
        print(f"confroute-probe: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
