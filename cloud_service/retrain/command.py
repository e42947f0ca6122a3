"""``cloud-service retrain --edge-bundle DIR [--once | --interval S]``: the retrain worker's command line.

Redis and logging come from the service's settings (``--redis-url`` or ``CONFROUTE_CLOUD_REDIS_URL``, ...).
With ``--policy-signing-key`` (or ``CONFROUTE_CLOUD_POLICY_SIGNING_KEY``) the probe is signed with the key
policies are signed with; a published probe is followed by the policy that names it (``--canary-share``).
``--edge-bundle`` is the cloud's copy of the edge build whose partitions are refitted (the same build the
judge extracts features with: ``cloud-service judge --edge-bundle DIR``). ``--once`` prints one JSON line
per partition with new labels: the published probe version or the reason none was.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from cloud_service.config import ServiceConfig
from cloud_service.ops.worker_metrics import WorkerMetrics
from cloud_service.retrain.config import RetrainConfig
from cloud_service.retrain.worker import RetrainResult, RetrainWorker
from cloud_service.stores import open_policy_store, open_redis_client, outcome_log_config, signer
from cloud_service.worker_command import add_pass_flags, add_service_flags, config_from_args, run_passes, run_worker

_DEFAULTS = RetrainConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_service_flags(parser, ("redis_url", "policy_signing_key"))
    add_pass_flags(parser)
    parser.add_argument("--edge-bundle", type=Path, required=True, help="the edge build whose probes are refitted")
    parser.add_argument("--min-examples", type=int, default=_DEFAULTS.min_examples)
    parser.add_argument("--min-per-class", type=int, default=_DEFAULTS.min_per_class)
    parser.add_argument("--val-frac", type=float, default=_DEFAULTS.val_frac, help="share held out to compare")
    parser.add_argument("--margin", type=float, default=_DEFAULTS.margin,
                        help="held-out AUROC the new probe must gain over the live one")
    parser.add_argument("--max-features", type=int, default=_DEFAULTS.max_features)
    parser.add_argument("--canary-share", type=float, default=_DEFAULTS.canary_share,
                        help="share of a cohort's devices that get the policy introducing a new probe first")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(RetrainConfig, args)
    metrics = WorkerMetrics("retrain")
    return run_worker("retrain", args, lambda service: _run(service, config, args.edge_bundle, args.interval,
                                                            metrics))


async def _run(service: ServiceConfig, config: RetrainConfig, bundle: Path, interval_s: float | None,
               metrics: WorkerMetrics) -> None:
    async with open_redis_client(service) as client, open_policy_store(service) as store:
        worker = RetrainWorker(client, outcome_log_config(service), bundle, config, signer=signer(service),
                               policies=store)
        await run_passes(worker.run_once, interval_s, _show, metrics)


def _show(results: Sequence[RetrainResult]) -> None:
    for result in results:
        print(json.dumps({"edge_model_version": result.edge_model_version, "cohort": result.cohort,
                          "status": "published" if result.published else "refused", "reason": result.reason,
                          "probe": result.published.version if result.published else None,
                          "examples": result.refit.examples, "new_auroc": result.refit.new_auroc,
                          "live_auroc": result.refit.live_auroc}, sort_keys=True), flush=True)
