"""``make demo``: builds the SmolLM2 bundle on first run, then answers sample questions on the device,
printing each answer with the fused head's confidence signals.

    python -m edge_agent.demo [--int8] [--max-tokens N] [--questions FILE.jsonl] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from confroute.bundle.store import MANIFEST_FILE
from confroute.engine import Generation, SamplingParams
from confroute.errors import ConfrouteError
from confroute.paths import cache_dir, default_bundle_dir
from edge_agent.model import EdgeModel, runtime_options

QUESTIONS = Path(__file__).with_name("demo_questions.jsonl")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    bundle: Path
    build_default: bool
    int8: bool
    questions: Path
    max_tokens: int
    threads: int


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> DemoConfig:
    parser = argparse.ArgumentParser(prog="make demo ARGS=...", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="use this bundle instead of building SmolLM2")
    parser.add_argument("--int8", action="store_true", help="use the 8-bit SmolLM2 bundle")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="JSONL with 'question' (and 'gold')")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    bundle = args.bundle or default_bundle_dir(cache_dir(env), args.int8)
    return DemoConfig(bundle, args.bundle is None, args.int8, args.questions, args.max_tokens, args.threads)


def ensure_bundle(config: DemoConfig) -> None:
    """Builds the default bundle in a child process (the export tooling never loads into the agent)."""
    if (config.bundle / MANIFEST_FILE).is_file() or not config.build_default:
        return
    print(f"[demo] building the SmolLM2-135M-Instruct bundle into {config.bundle} (first run only, ~1 min)")
    cmd = [sys.executable, "-m", "confroute.modelkit.cli", *(["--int8"] if config.int8 else [])]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def load_questions(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _cell(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def print_row(n: int, question: Mapping[str, str], gen: Generation, seconds: float) -> None:
    print(f"{n:>2} {_cell(question['question'], 44):44} | {_cell(gen.text, 46):46} | "
          f"{gen.mean_entropy:5.2f} {gen.min_max_prob:5.2f} {gen.mean_logprob:6.2f} | "
          f"{'untrained' if gen.tbg is None else f'{gen.tbg:.2f}':>9} | {seconds * 1000:6.0f} ms", flush=True)


def run(config: DemoConfig) -> None:
    ensure_bundle(config)
    model = EdgeModel(config.bundle, runtime_options("cpu", config.threads))
    print(f"[demo] edge model {model.model_id} version {model.version}")
    header = f"{'#':>2} {'question':44} | {'edge answer':46} | {'H̄':>5} {'pmin':>5} {'logp̄':>6}"
    print(f"{header} | {'TBG probe':>9} | latency")
    params = SamplingParams(max_new_tokens=config.max_tokens)
    for n, question in enumerate(load_questions(config.questions), 1):
        started = time.perf_counter()
        gen = model.answer([{"role": "user", "content": question["question"]}], params)
        print_row(n, question, gen, time.perf_counter() - started)
    print("[demo] H̄ mean token entropy (nats), pmin lowest max-prob, logp̄ mean token log-prob; "
          "low confidence is what the router escalates.")


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv, dict(os.environ))
    try:
        run(config)
    except KeyboardInterrupt:
        print("\n[demo] interrupted")
        return 130
    except (ConfrouteError, subprocess.CalledProcessError) as exc:
        print(f"[demo] error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
