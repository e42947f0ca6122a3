"""Peak RSS and cold start of one runtime in a fresh process that imports nothing else.

``bench.edge_generation`` runs this module as a child per bundle (and per genai model): the parent has
imported onnx, the model kit and the benchmark's helpers (~17 MB that a served engine never loads), so
the child imports only the runtime it measures: the engine (``--bundle``) or onnxruntime-genai
(``--genai``). It generates 128 tokens greedily after a prompt of ``--prompt-tokens`` ids and prints one
JSON line: ``cold_start_s`` (process start to the first token; the parent passes the start time in
``CONFROUTE_BENCH_T0``) and ``peak_rss_mb`` (``VmHWM``: ``ru_maxrss`` would carry over the parent's peak
across exec on Linux).

    python -m bench.edgebench.footprint (--bundle DIR | --genai DIR) [--prompt-tokens N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

NEW_TOKENS = 128


def peak_rss_mb() -> float:
    """VmHWM of this process, in MiB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def engine_first_token(bundle: Path, prompt: list[int], started: float) -> float:
    """Loads ``bundle`` into the engine, generates; returns the seconds from ``started`` to the first token."""
    from confroute.engine import Engine, RuntimeOptions, SamplingParams

    engine = Engine(bundle, RuntimeOptions(intra_op_threads=2))
    events = iter(engine.start(prompt, SamplingParams(max_new_tokens=NEW_TOKENS, ignore_eos=True)))
    next(events)
    first = time.time() - started
    for _ in events:
        pass
    return first


def genai_first_token(model_dir: Path, prompt: list[int], started: float) -> float:
    """The same with onnxruntime-genai's generator (as :mod:`bench.baselines.genai` runs it)."""
    import numpy as np
    import onnxruntime_genai as og

    config = og.Config(str(model_dir))
    config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": 2}}}}))
    model = og.Model(config)
    params = og.GeneratorParams(model)
    total = len(prompt) + NEW_TOKENS
    params.set_search_options(do_sample=False, max_length=total, min_length=total)
    generator = og.Generator(model, params)
    generator.append_tokens(np.asarray(prompt, dtype=np.int32))
    generator.generate_next_token()
    first = time.time() - started
    while not generator.is_done():
        generator.generate_next_token()
    return first


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edgebench.footprint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--bundle", type=Path)
    which.add_argument("--genai", type=Path)
    parser.add_argument("--prompt-tokens", type=int, default=20)
    args = parser.parse_args(argv)
    started = float(os.environ.get("CONFROUTE_BENCH_T0", time.time()))
    prompt = list(range(10, 10 + args.prompt_tokens))
    if args.bundle:
        first = engine_first_token(args.bundle, prompt, started)
    else:
        first = genai_first_token(args.genai, prompt, started)
    print(json.dumps({"cold_start_s": first, "peak_rss_mb": peak_rss_mb()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
