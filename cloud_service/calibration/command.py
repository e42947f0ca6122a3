"""``cloud-service recalibrate [--once | --interval S]``: the recalibration worker's command line.

Redis, the policy signing key and logging come from the service's settings (``--redis-url`` or
``CONFROUTE_CLOUD_REDIS_URL``, ``--policy-signing-key`` or ``CONFROUTE_CLOUD_POLICY_SIGNING_KEY``); the
target and the refusal thresholds from the flags below. ``--once`` prints one JSON line per
(edge model version, cohort): the published version or the reason for keeping the old policy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
from pathlib import Path

from cloud_service.calibration.config import TARGETS, RecalibrationConfig
from cloud_service.calibration.worker import RecalibrationWorker
from cloud_service.config import ServiceConfig, config_from
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.policies.config import PolicyStoreConfig
from cloud_service.policies.redis_store import RedisPolicyStore
from cloud_service.redis_client import connect
from confroute.logs import configure_logging
from confroute.signing import load_signing_key

_DEFAULTS = RecalibrationConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="env CONFROUTE_CLOUD_REDIS_URL")
    parser.add_argument("--policy-signing-key", default=None, help="env CONFROUTE_CLOUD_POLICY_SIGNING_KEY")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="one pass, then exit (the default)")
    when.add_argument("--interval", type=float, default=None, metavar="S", help="a pass every S seconds")
    parser.add_argument("--target", choices=TARGETS, default=_DEFAULTS.target)
    parser.add_argument("--target-rate", type=float, default=_DEFAULTS.target_rate, help="share escalated (rate)")
    parser.add_argument("--alpha", type=float, default=_DEFAULTS.alpha, help="risk bound (quality)")
    parser.add_argument("--delta", type=float, default=_DEFAULTS.delta, help="1 - confidence (quality)")
    parser.add_argument("--lam", type=float, default=_DEFAULTS.lam, help="price of an escalation (tradeoff)")
    parser.add_argument("--min-labelled", type=int, default=_DEFAULTS.min_labelled)
    parser.add_argument("--min-effective-size", type=float, default=_DEFAULTS.min_effective_size)
    parser.add_argument("--canary-share", type=float, default=_DEFAULTS.canary_share)
    parser.add_argument("--consumer", default=None, help="consumer name in the group (default host-pid)")
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size)
    parser.add_argument("--claim-idle-s", type=float, default=_DEFAULTS.claim_idle_s)
    parser.add_argument("--skip-fold", action="store_true",
                        help="recalibrate from the statistics kept at ingest without reading the streams first")


def recalibration_config(args: argparse.Namespace) -> RecalibrationConfig:
    return RecalibrationConfig(
        target=args.target,
        target_rate=args.target_rate,
        alpha=args.alpha,
        delta=args.delta,
        lam=args.lam,
        min_labelled=args.min_labelled,
        min_effective_size=args.min_effective_size,
        canary_share=args.canary_share,
        consumer=args.consumer or f"{socket.gethostname()}-{os.getpid()}",
        batch_size=args.batch_size,
        claim_idle_s=args.claim_idle_s,
    )


def run(args: argparse.Namespace) -> int:
    service = config_from(args, os.environ)
    configure_logging(service.log_format, service.log_level)
    config = recalibration_config(args)
    asyncio.run(_run(service, config, args.interval, fold=not args.skip_fold))
    return 0


async def _run(service: ServiceConfig, config: RecalibrationConfig, interval_s: float | None, *, fold: bool) -> None:
    client = connect(service.redis_url, connect_timeout_s=1.0, command_timeout_s=30.0)
    signer = load_signing_key(Path(service.policy_signing_key)) if service.policy_signing_key else None
    store = RedisPolicyStore(PolicyStoreConfig(url=service.redis_url), signer=signer)
    worker = RecalibrationWorker(client, OutcomeLogConfig(url=service.redis_url), store, config)
    try:
        if interval_s is not None:
            await worker.run_forever(interval_s)
        results = await worker.run_once() if fold else await worker.recalibrate()
        for result in results:
            summary = {"status": "published" if result.policy else "refused", "reason": result.reason,
                       **result.provenance}
            if result.policy is not None:
                summary |= {"edge_model_version": result.policy.edge_model.version, "cohort": result.policy.cohort}
            print(json.dumps(summary, sort_keys=True), flush=True)
    finally:
        await store.close()
        await client.aclose()
