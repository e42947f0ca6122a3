"""``cloud-service recalibrate [--once | --interval S]``: the recalibration worker's command line.

Redis, the policy signing key and logging come from the service's settings (``--redis-url`` or
``CONFROUTE_CLOUD_REDIS_URL``, ``--policy-signing-key`` or ``CONFROUTE_CLOUD_POLICY_SIGNING_KEY``, ...); the
target and the refusal thresholds from the flags below. ``--once`` prints one JSON line per
(edge model version, cohort): the published version or the reason for keeping the old policy. ``--dry-run``
shows what each would change and why, changing nothing (:mod:`cloud_service.ops.dry_run`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence

from cloud_service.calibration.config import TARGETS, RecalibrationConfig
from cloud_service.calibration.policy_maker import Recalibration
from cloud_service.calibration.worker import RecalibrationWorker
from cloud_service.config import ServiceConfig
from cloud_service.ops.dry_run import as_json_lines, as_table, dry_run
from cloud_service.ops.stream_lag import group_lag
from cloud_service.ops.worker_metrics import WorkerMetrics
from cloud_service.outcomes.config import PartitionKeys
from cloud_service.stores import open_policy_store, open_redis_client, outcome_log_config
from cloud_service.worker_command import (
    add_metrics_flag,
    add_pass_flags,
    add_service_flags,
    config_from_args,
    run_passes,
    run_worker,
)
from confroute.errors import InvalidInput

_DEFAULTS = RecalibrationConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_service_flags(parser, ("redis_url", "policy_signing_key"))
    add_pass_flags(parser)
    add_metrics_flag(parser, "recalibrate")
    parser.add_argument("--target", choices=TARGETS, default=_DEFAULTS.target)
    parser.add_argument("--target-rate", type=float, default=_DEFAULTS.target_rate, help="share escalated (rate)")
    parser.add_argument("--alpha", type=float, default=_DEFAULTS.alpha, help="risk bound (quality)")
    parser.add_argument("--delta", type=float, default=_DEFAULTS.delta, help="1 - confidence (quality)")
    parser.add_argument("--lam", type=float, default=_DEFAULTS.lam, help="price of an escalation (tradeoff)")
    parser.add_argument("--min-labelled", type=int, default=_DEFAULTS.min_labelled)
    parser.add_argument("--min-effective-size", type=float, default=_DEFAULTS.min_effective_size)
    parser.add_argument("--canary-share", type=float, default=_DEFAULTS.canary_share)
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size)
    parser.add_argument("--claim-idle-s", type=float, default=_DEFAULTS.claim_idle_s)
    parser.add_argument("--skip-fold", action="store_true",
                        help="recalibrate from the statistics kept at ingest without reading the streams first")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what each policy would change and why; publish, fold and record nothing")
    parser.add_argument("--json", action="store_true", help="with --dry-run: one JSON line per partition")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(RecalibrationConfig, args)
    if args.dry_run:
        if args.interval is not None:
            raise InvalidInput("--dry-run runs once; it takes no --interval", field="dry_run")
        return run_worker("recalibrate", args, lambda service: _dry_run(service, config, as_json=args.json))
    metrics = WorkerMetrics("recalibrate")
    return run_worker("recalibrate", args, lambda service: _run(service, config, args.interval, metrics,
                                                               fold=not args.skip_fold), metrics.registry)


async def _run(service: ServiceConfig, config: RecalibrationConfig, interval_s: float | None,
               metrics: WorkerMetrics, *, fold: bool) -> None:
    async with open_redis_client(service) as client, open_policy_store(service) as store:
        log = outcome_log_config(service)
        worker = RecalibrationWorker(client, log, store, config, on_result=_observer(metrics))

        async def sample_lag() -> None:
            lag = await group_lag(client, log, config.group)
            metrics.stream_lag.labels(config.group).set(lag.lag)
            metrics.stream_pending.labels(config.group).set(lag.pending)

        await run_passes(worker.run_once if fold else worker.recalibrate, interval_s, _show, metrics,
                         after=sample_lag)


async def _dry_run(service: ServiceConfig, config: RecalibrationConfig, *, as_json: bool) -> None:
    async with open_redis_client(service) as client, open_policy_store(service) as store:
        changes = await dry_run(client, outcome_log_config(service), store, config)
    print(as_json_lines(changes) if as_json else as_table(changes), flush=True)


def _observer(metrics: WorkerMetrics) -> Callable[[PartitionKeys, Recalibration], None]:
    def observe(keys: PartitionKeys, result: Recalibration) -> None:
        partition = keys.partition
        metrics.observe_recalibration(partition.edge_model_version, partition.cohort, result.policy is not None,
                                      result.provenance)

    return observe


def _show(results: Sequence[Recalibration]) -> None:
    for result in results:
        summary = {"status": "published" if result.policy else "refused", "reason": result.reason,
                   **result.provenance}
        if result.policy is not None:
            summary |= {"edge_model_version": result.policy.edge_model.version, "cohort": result.policy.cohort}
        print(json.dumps(summary, sort_keys=True), flush=True)
