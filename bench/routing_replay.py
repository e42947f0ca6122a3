"""Benchmark A: query routers trained on RouteLLM's published per-query outcomes (Mixtral-8x7B -> GPT-4 on
MT-Bench, GSM8K, MMLU), cross-fitted so that no query is scored by a router that saw it, against random and
the oracle, with RouteLLM's APGR / CPT conventions (confroute.calibration.routing_curves).

    python -m bench.routing_replay [--quick] [--json PATH] [--png-dir DIR] [--data DIR] [--readme]
                                   [--states-bundle DIR | --no-states]

Data: ``--data``, else ``$CONFROUTE_DATA_DIR``, else ``<repo>/../shared/data`` (MANIFEST.md there).
Embeddings (all-MiniLM-L6-v2, numpy) are cached under the confroute cache, so reruns are fast. Where the local
cloud model's bundle is in the cache (``--states-bundle``), MT-Bench and GSM8K also get a router reading its
hidden states (bench.replay.llm_features; about 0.7 s per query on one core the first time, then cached);
``--quick`` reads them only from a bundle named with ``--states-bundle``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from confroute.paths import cache_dir

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from bench.replay.data import ReplayData
    from bench.replay.llm_features import StateEmbedder
    from bench.replay.report import DatasetReport
    from confroute.embeddings.cache import CachedEmbedder

DATASETS = ("mt_bench", "gsm8k", "mmlu")
REPO = Path(__file__).resolve().parents[1]
MakeEmbedder = Callable[[str, "Config"], "CachedEmbedder"]
MakeStates = Callable[["Config"], "StateEmbedder | None"]
#: Tokens kept per text for the embedding; MMLU keeps the question's head (its cost dominates the run).
EMBED_TOKENS = {"mt_bench": 256, "gsm8k": 256, "mmlu": 64}
#: Datasets whose routers also read an LLM's hidden states (MMLU's 14k prefills would take hours on one core).
STATES_DATASETS = ("mt_bench", "gsm8k")
STATES_BUNDLE = "qwen2.5-coder-0.5b-instruct-int8"
#: Short names of known bundles for the router row (the table's router column is 34 characters wide).
STATES_LABELS = {STATES_BUNDLE: "Qwen-0.5B", "smollm2-135m-instruct-int8": "SmolLM2-135M"}


@dataclass(frozen=True)
class Config:
    data_dir: Path
    cache: Path
    datasets: tuple[str, ...]
    folds: int
    seeds: int
    mmlu_rows: int | None
    states_bundle: Path | None
    json_path: Path | None
    png_dir: Path | None
    quick: bool
    readme: bool


def _log(message: str) -> None:
    print(f"[routing_replay] {message}", file=sys.stderr, flush=True)


def default_data_dir(env: Mapping[str, str]) -> Path:
    if explicit := env.get("CONFROUTE_DATA_DIR"):
        return Path(explicit).expanduser()
    return REPO.parent / "shared" / "data"


def parse_config(argv: Sequence[str] | None, env: Mapping[str, str]) -> Config:
    p = argparse.ArgumentParser(prog="python -m bench.routing_replay", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="5 folds, 1 fold seed, MMLU subsampled to 2000 rows")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--png-dir", type=Path, default=None, help="write one quality-vs-escalation PNG per dataset")
    p.add_argument("--data", type=Path, default=None,
                   help="data folder (default: $CONFROUTE_DATA_DIR, else ../shared/data next to the repo)")
    p.add_argument("--datasets", default="mt_bench,gsm8k,mmlu")
    p.add_argument("--readme", action="store_true",
                   help="regenerate the bench.routing_replay block of docs/routing-quality.md (curves into docs/img/)")
    p.add_argument("--folds", type=int, default=None, help="cross-fitting folds (default 10, quick 5)")
    p.add_argument("--seeds", type=int, default=None, help="fold seeds to average over (default 3, quick 1)")
    p.add_argument("--mmlu-rows", type=int, default=None, help="MMLU subsample (default all, quick 2000)")
    states = p.add_mutually_exclusive_group()
    states.add_argument("--states-bundle", type=Path, default=None,
                        help=f"bundle whose hidden states feed one more router (default: {STATES_BUNDLE} in the "
                             "confroute cache, skipped when absent; --quick uses one only when given here)")
    states.add_argument("--no-states", action="store_true", help="no hidden-state router")
    a = p.parse_args(argv)
    names = tuple(n.strip() for n in a.datasets.split(",") if n.strip())
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        p.error(f"unknown datasets {unknown}; choose from {list(DATASETS)}")
    cache = cache_dir(env)
    # --quick must finish in minutes: computing the default bundle's states can take a quarter of an hour
    default_bundle = None if a.quick else cache / "bundles" / STATES_BUNDLE
    bundle = None if a.no_states else (a.states_bundle or default_bundle)
    return Config(data_dir=a.data or default_data_dir(env), cache=cache, datasets=names,
                  folds=a.folds or (5 if a.quick else 10), seeds=a.seeds or (1 if a.quick else 3),
                  mmlu_rows=a.mmlu_rows or (2000 if a.quick else None), states_bundle=bundle, json_path=a.json,
                  png_dir=a.png_dir or (REPO / "docs" / "img" if a.readme else None), quick=a.quick, readme=a.readme)


def load(name: str, config: Config) -> ReplayData:
    import numpy as np

    from bench.replay.data import LOADERS, shuffled

    data = LOADERS[name](config.data_dir)
    if name == "mmlu":
        data = shuffled(data)
        if config.mmlu_rows is not None:
            data = data.subset(np.arange(min(config.mmlu_rows, len(data)), dtype=np.int64))
    return data


def minilm_embedder(name: str, config: Config) -> CachedEmbedder:
    """The production embedder for ``name``'s texts: all-MiniLM-L6-v2, cached on disk."""
    from confroute.embeddings.cache import CachedEmbedder
    from confroute.embeddings.minilm import load_minilm

    return CachedEmbedder(load_minilm(config.cache, _log, max_tokens=EMBED_TOKENS[name]), config.cache / "embeddings")


def bundle_states(config: Config) -> StateEmbedder | None:
    """The hidden states of ``config.states_bundle``, or None (logged) when it is off or not there."""
    from bench.replay.llm_features import HiddenStates

    bundle = config.states_bundle
    if bundle is None:
        return None
    if not (bundle / "manifest.json").is_file():
        _log(f"no bundle at {bundle}: the hidden-state router is skipped")
        return None
    return HiddenStates(bundle, label=STATES_LABELS.get(bundle.name, bundle.name))


def hidden_state_blocks(data: ReplayData, states: StateEmbedder, config: Config) -> npt.NDArray[np.float64]:
    """The queries' hidden states (cached in chunks of 100 like the embeddings), one normalised block per layer."""
    from bench.replay.embed import embed_chunked
    from bench.replay.llm_features import layer_blocks
    from confroute.embeddings.cache import CachedEmbedder

    started = time.perf_counter()
    raw = embed_chunked(CachedEmbedder(states, config.cache / "embeddings"), data.prompts, _log, chunk=100)
    _log(f"{data.name}: hidden states of {states.model_id} in {time.perf_counter() - started:.1f}s")
    return layer_blocks(raw, states.n_layers)


def run_dataset(name: str, config: Config, make_embedder: MakeEmbedder = minilm_embedder,
                make_states: MakeStates = bundle_states) -> DatasetReport:
    from bench.replay.embed import embed_chunked
    from bench.replay.evaluate import evaluate_router, reference_results
    from bench.replay.report import DatasetReport
    from bench.replay.suite import feature_sets, router_specs

    data = load(name, config)
    embedder = make_embedder(name, config)
    started = time.perf_counter()
    prompt_emb = embed_chunked(embedder, data.prompts, _log)
    _log(f"{name}: {len(data)} queries embedded in {time.perf_counter() - started:.1f}s")
    states = make_states(config) if name in STATES_DATASETS else None
    blocks = hidden_state_blocks(data, states, config) if states is not None else None
    sets = feature_sets(data, prompt_emb, blocks)
    results = reference_results(data.weak, data.strong)
    described = (states.label, states.n_layers) if states is not None else None
    for spec in router_specs(data, seed=0, emb_dim=prompt_emb.shape[1], states=described):
        started = time.perf_counter()
        results.append(evaluate_router(spec, sets[spec.features], data.weak, data.strong, config.folds,
                                       tuple(range(config.seeds))))
        _log(f"{name}: {spec.name} cross-fitted in {time.perf_counter() - started:.1f}s")
    return DatasetReport(data, results, config.folds, config.seeds, EMBED_TOKENS[name])


def main(argv: Sequence[str] | None = None, make_embedder: MakeEmbedder = minilm_embedder,
         make_states: MakeStates = bundle_states) -> int:
    config = parse_config(argv, os.environ)
    # Before numpy loads: OpenBLAS's worker threads spin, and on a small shared CPU they make the many small
    # matrix products of the routers (and the encoder) several times slower than one thread.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from bench.cpu import this_cpu
    from bench.readme_block import links_from, page_of, replace_block
    from bench.replay.report import document, markdown, plot, table

    reports = [run_dataset(name, config, make_embedder, make_states) for name in config.datasets]
    cpu = this_cpu().to_json()
    print(table(reports))
    pngs = [config.png_dir / f"routing_replay_{rep.data.name}.png" for rep in reports] if config.png_dir else []
    for rep, png in zip(reports, pngs, strict=False):
        plot(rep, png)
    if config.readme:
        page = page_of("bench.routing_replay")
        command = "python -m bench.routing_replay" + (" --quick" if config.quick else "") + " --readme"
        replace_block(page, "bench.routing_replay", markdown(reports, links_from(page, pngs), command, cpu))
        _log(f"regenerated the bench.routing_replay block of {page.relative_to(REPO)}")
    if config.json_path is not None:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()}
        config.json_path.parent.mkdir(parents=True, exist_ok=True)
        config.json_path.write_text(json.dumps(document(reports, settings, cpu), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
