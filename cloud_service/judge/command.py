"""``cloud-service judge [--once | --interval S]``: the LLM judge's command line.

The cloud model is the escalation path's (``--triton-url``, ``--triton-model``, ``--prompt-format`` or
their ``CONFROUTE_CLOUD_*`` variables); Redis is ``--redis-url``. ``--judge-prompts FILE --judge-prompt
NAME`` picks another MT-Bench judge prompt than the built-in ones. ``--edge-bundle DIR`` (the cloud's copy
of the edge build) also extracts the router probe's features from each judged query's held texts before
they are deleted (``cloud_service.retrain.features``).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cloud_service.backends.triton import TritonBackend, TritonBackendConfig
from cloud_service.config import ServiceConfig
from cloud_service.judge.config import JudgeConfig
from cloud_service.judge.judge import Judge
from cloud_service.judge.prompts import JudgePrompt, load_prompt
from cloud_service.judge.worker import JudgeWorker
from cloud_service.ops.stream_lag import group_lag, to_judge_stream
from cloud_service.ops.worker_metrics import WorkerMetrics
from cloud_service.retrain.features import FeatureExtractor, FeatureStore
from cloud_service.stores import open_redis_client, outcome_log_config
from cloud_service.worker_command import (
    add_metrics_flag,
    add_pass_flags,
    add_service_flags,
    config_from_args,
    run_passes,
    run_worker,
)

_DEFAULTS = JudgeConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_service_flags(parser, ("redis_url", "triton_url", "triton_model", "prompt_format"))
    add_pass_flags(parser)
    add_metrics_flag(parser, "judge")
    parser.add_argument("--method", choices=("single", "pairwise"), default=_DEFAULTS.method)
    parser.add_argument("--share", type=float, default=_DEFAULTS.share, help="share of eligible queries judged")
    parser.add_argument("--max-in-flight", type=int, default=_DEFAULTS.max_in_flight)
    parser.add_argument("--calls-per-second", type=float, default=_DEFAULTS.calls_per_second)
    parser.add_argument("--timeout-s", type=float, default=_DEFAULTS.timeout_s)
    parser.add_argument("--max-tokens", type=int, default=_DEFAULTS.max_tokens)
    parser.add_argument("--judge-prompts", type=Path, default=None, help="an MT-Bench judge_prompts.jsonl")
    parser.add_argument("--judge-prompt", default=None, help="the prompt's name in --judge-prompts")
    parser.add_argument("--edge-bundle", type=Path, default=None,
                        help="extract router probe features from held texts with this edge build")
    parser.add_argument("--max-features", type=int, default=20_000, help="features kept per partition")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(JudgeConfig, args)
    prompt = load_prompt(args.judge_prompts, args.judge_prompt) if args.judge_prompts and args.judge_prompt else None
    metrics = WorkerMetrics("judge")
    features = Features(args.edge_bundle, args.max_features)
    return run_worker("judge", args, lambda service: _run(service, config, prompt, args.interval, metrics, features),
                      metrics.registry)


@dataclass(frozen=True)
class Features:
    """Where the judge extracts probe features (no bundle: none)."""

    bundle: Path | None
    max_features: int


async def _run(service: ServiceConfig, config: JudgeConfig, prompt: JudgePrompt | None, interval_s: float | None,
               metrics: WorkerMetrics, features: Features) -> None:
    backend = await TritonBackend.create(TritonBackendConfig(
        url=service.triton_url, model=service.triton_model, prompt_format=service.prompt_format))
    from confroute.engine import Engine  # onnxruntime: only where features are extracted

    engine = Engine(features.bundle) if features.bundle is not None else None
    try:
        async with open_redis_client(service) as client:
            judge = Judge(backend, config, prompt, on_call=metrics.observe_judge_call)
            log = outcome_log_config(service, retain_text=True)
            store = FeatureStore(client, log, features.max_features)
            after = [] if engine is None else [FeatureExtractor(engine, store)]
            worker = JudgeWorker(client, log, judge, config, after=after)

            async def sample_lag() -> None:
                lag = await group_lag(client, log, config.group, to_judge_stream)  # texts held pending judgement
                metrics.stream_lag.labels(config.group).set(lag.lag)
                metrics.stream_pending.labels(config.group).set(lag.pending)

            await run_passes(worker.run_once, interval_s, _show, metrics, metrics.observe_judge_pass, sample_lag)
    finally:
        await backend.close()
        if engine is not None:
            engine.close()


def _show(outcomes: Counter[str]) -> None:
    print(json.dumps(dict(outcomes), sort_keys=True), flush=True)
