"""``edge-agent``: the device's command line.

    edge-agent ask "What is 12 times 7?"     # streams the answer, then one line of routing metadata
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from confroute.engine import SamplingParams
from confroute.errors import ConfrouteError
from confroute.paths import cache_dir, default_bundle_dir
from edge_agent.model import EdgeModel, runtime_options, signals


@dataclasses.dataclass(frozen=True)
class AskConfig:
    """One process, one frozen config: built from flags and ``CONFROUTE_EDGE_*`` variables in main()."""

    question: str
    bundle: Path
    device: str
    threads: int
    params: SamplingParams


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> AskConfig:
    parser = argparse.ArgumentParser(prog="edge-agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer one question locally")
    ask.add_argument("question")
    ask.add_argument("--bundle", type=Path, default=env.get("CONFROUTE_EDGE_BUNDLE"),
                     help="model bundle folder (default: the SmolLM2 bundle in the cache)")
    ask.add_argument("--device", default=env.get("CONFROUTE_EDGE_DEVICE", "cpu"), help="cpu, cuda or tensorrt")
    ask.add_argument("--threads", type=int, default=int(env.get("CONFROUTE_EDGE_THREADS", "2")))
    ask.add_argument("--max-tokens", type=int, default=256)
    ask.add_argument("--temperature", type=float, default=0.0)
    ask.add_argument("--top-p", type=float, default=1.0)
    ask.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    bundle = args.bundle or default_bundle_dir(cache_dir(env), quantized=False)
    params = SamplingParams(max_new_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                            seed=args.seed)
    return AskConfig(args.question, Path(bundle), args.device, args.threads, params)


def ask(config: AskConfig) -> None:
    model = EdgeModel(config.bundle, runtime_options(config.device, config.threads))
    run = model.start([{"role": "user", "content": config.question}], config.params)
    for event in run:
        sys.stdout.write(event.text)
        sys.stdout.flush()
    result = run.result
    meta = {"side": "edge", "model": model.model_id, "version": model.version, "signals": signals(result),
            "tokens": result.completion_tokens, "finish": result.finish_reason,
            "prefill_ms": round(result.prefill_ms, 1), "decode_tok_s": round(result.decode_tokens_per_s, 1)}
    print("\n" + json.dumps(meta))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_args(sys.argv[1:] if argv is None else argv, dict(os.environ))
        ask(config)
    except ConfrouteError as exc:
        print(f"edge-agent: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
