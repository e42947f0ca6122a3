"""``cloud-service backpressure``: the back-pressure controller as its own small process.

Run one per deployment (next to the services, not in each replica, so that replicas do not fight over
the shift). It reads Triton's ``/metrics`` and each service replica's ``/metrics``, and publishes shifted
thresholds for the given (edge model version, cohort) keys; its own ``/metrics`` shows the shift.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal

from cloud_service.config import ServiceConfig
from cloud_service.metrics import ServiceMetrics, create_metrics
from cloud_service.policies.backpressure import BackpressureController, BackpressureSettings
from cloud_service.policies.load_metrics import PrometheusLoadSource
from cloud_service.policies.operations import RolloutStore
from cloud_service.stores import open_policy_store
from cloud_service.worker_command import add_metrics_flag, add_service_flags, run_worker
from confroute.errors import InvalidInput

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The controller's flags (the store's are the service's: --redis-url, --policy-signing-key)."""
    add_service_flags(parser, ("redis_url", "policy_signing_key"))
    parser.add_argument("--triton-metrics-url", required=True, help="e.g. http://triton:8002/metrics")
    parser.add_argument("--service-metrics-url", action="append", default=[], help="each replica's /metrics")
    parser.add_argument("--model", default="", help="only this Triton model's metrics (default: all)")
    parser.add_argument("--key", action="append", required=True, metavar="EDGE_MODEL_VERSION/COHORT")
    add_metrics_flag(parser, "backpressure")
    for spec in dataclasses.fields(BackpressureSettings):
        parser.add_argument(_flag(spec.name), dest=spec.name, type=float, default=spec.default)


def _flag(name: str) -> str:
    """A setting's flag as every command spells it: ``--interval`` (seconds), ``--in-flight-high``."""
    if name == "interval_s":
        return "--interval"
    return "--" + name.replace("inflight", "in_flight").replace("_", "-")


def settings_from(args: argparse.Namespace) -> BackpressureSettings:
    values = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(BackpressureSettings)}
    try:
        return BackpressureSettings(**values)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="backpressure") from exc


def parse_keys(raw: list[str]) -> list[tuple[str, str]]:
    keys = []
    for item in raw:
        version, sep, cohort = item.partition("/")
        if not sep or not version:
            raise InvalidInput(f"--key must be EDGE_MODEL_VERSION/COHORT, got {item!r}", field="key")
        keys.append((version, cohort))
    return keys


def run(args: argparse.Namespace) -> int:
    """``cloud-service backpressure``: the controller on the configured policy store until a signal."""
    metrics = create_metrics()
    return run_worker("backpressure", args, lambda service: _control(service, args, metrics), metrics.registry)


async def _control(service: ServiceConfig, args: argparse.Namespace, metrics: ServiceMetrics) -> int:
    async with open_policy_store(service) as store:
        return await run_controller(args, store, metrics)


async def run_controller(args: argparse.Namespace, store: RolloutStore, metrics: ServiceMetrics) -> int:
    """Runs until SIGINT or SIGTERM; its ``/metrics`` (``--metrics-listen``) serves ``metrics``."""
    source = PrometheusLoadSource(args.triton_metrics_url, args.service_metrics_url, args.model)
    controller = BackpressureController(store, parse_keys(args.key), source, settings_from(args),
                                        on_adjust=metrics.observe_threshold_shift)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logger.info("back-pressure controller for %s", args.key)
    await controller.run(stop)
    return 0
