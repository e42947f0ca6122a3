"""What the cloud's worker commands share (``recalibrate``, ``judge``, ``backpressure``): the service
settings they read, spelled as ``serve`` spells them; ``--once`` / ``--interval`` passes; ``--metrics-listen``;
and their main.

A worker's main reads the service config (flags, then ``CONFROUTE_CLOUD_*``), sets up logging from it,
logs that it starts, serves its ``/metrics`` (``--metrics-listen HOST:PORT``, each worker its own default
port, empty: none; ``process_*`` included) and runs its body on a fresh event loop. Passes run every
``--interval`` seconds: each is counted by result and timed; a Redis outage is logged and waited out.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from contextlib import ExitStack
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry

from cloud_service.config import ENV_PREFIX, ServiceConfig, config_from
from cloud_service.metrics import serve_metrics
from cloud_service.ops.worker_metrics import WorkerMetrics
from confroute.errors import Unavailable
from confroute.logs import configure_logging
from confroute.settings import add_flags, settings_of, split_address

logger = logging.getLogger(__name__)

T = TypeVar("T")
LOGGING = ("log_format", "log_level")
METRICS_PORTS = {"backpressure": 9465, "recalibrate": 9466, "judge": 9467}  # serve's is 9464


def add_service_flags(parser: argparse.ArgumentParser, names: Iterable[str], *, logging: bool = True) -> None:
    """The service settings ``names`` (and, with ``logging``, the logging ones), as ``serve`` spells them."""
    wanted = {*names, *(LOGGING if logging else ())}
    add_flags(parser, [s for s in settings_of(ServiceConfig) if s.name in wanted], ENV_PREFIX)


def add_pass_flags(parser: argparse.ArgumentParser) -> None:
    """``--once`` (the default) or ``--interval S``, and the consumer's name in the stream group."""
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="one pass, then exit (the default)")
    when.add_argument("--interval", type=float, default=None, metavar="S", help="a pass every S seconds")
    parser.add_argument("--consumer", default=None, help="consumer name in the group (default host-pid)")


def consumer_name(args: argparse.Namespace) -> str:
    """``--consumer``, else one unique to this process: host-pid."""
    return str(args.consumer or f"{socket.gethostname()}-{os.getpid()}")


def config_from_args(config_type: Callable[..., T], args: argparse.Namespace) -> T:
    """A worker's config from the flags named like its fields (the rest keep their defaults), its
    consumer name from :func:`consumer_name`."""
    names = {spec.name for spec in dataclasses.fields(config_type)}  # type: ignore[arg-type]
    values = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return config_type(**(values | {"consumer": consumer_name(args)}))


def add_metrics_flag(parser: argparse.ArgumentParser, worker: str, *aliases: str) -> None:
    """``--metrics-listen HOST:PORT``, spelled as ``serve`` spells it, with the worker's own default port,
    which a one-shot (``--once``) pass does not open."""
    default = f"127.0.0.1:{METRICS_PORTS[worker]}"
    parser.add_argument("--metrics-listen", *aliases, default=None, metavar="HOST:PORT",
                        help=f"this worker's /metrics (default {default}, none with --once; empty: none)")
    parser.set_defaults(metrics_default=default)


def metrics_listen(args: argparse.Namespace) -> str:
    """Where the worker serves ``/metrics``: the flag, else its default unless it runs one pass."""
    if args.metrics_listen is not None:
        return str(args.metrics_listen)
    return "" if getattr(args, "interval", 0.0) is None else str(args.metrics_default)


def run_worker(name: str, args: argparse.Namespace,
               body: Callable[[ServiceConfig], Coroutine[Any, Any, int | None]],
               registry: CollectorRegistry | None = None) -> int:
    """The worker ``name``'s main: config, logging, ``/metrics`` for ``registry`` (when ``--metrics-listen``
    is set), then ``body`` until it returns (its exit status)."""
    service = config_from(args, os.environ)
    configure_logging(service.log_format, service.log_level)
    logger.info("cloud-service %s starting", name)
    with ExitStack() as stack:
        listen = metrics_listen(args) if registry is not None else ""
        if registry is not None and listen:
            host, port = split_address(listen, "metrics_listen")
            endpoint = serve_metrics(registry, host, port)
            stack.callback(endpoint.close)
            logger.info("%s metrics on http://%s:%d/metrics", name, host, endpoint.port)
        code = asyncio.run(body(service))
    return 0 if code is None else code


async def run_passes(once: Callable[[], Awaitable[T]], interval_s: float | None, show: Callable[[T], None],
                     metrics: WorkerMetrics, observe: Callable[[T], None] = lambda _: None,
                     after: Callable[[], Awaitable[None]] | None = None) -> None:
    """One pass whose result is shown, or passes every ``interval_s`` until stopped. Each pass is counted
    and its result given to ``observe``; ``after`` runs after each pass (sampling the stream lag)."""
    if interval_s is None:
        result = await _timed(once, metrics)
        observe(result)
        await _after(after)
        show(result)
        return
    while True:
        try:
            observe(await _timed(once, metrics))
        except Unavailable as exc:
            logger.warning("%s pass skipped, Redis unavailable: %s", metrics.worker, exc)
        await _after(after)
        await asyncio.sleep(interval_s)


async def _timed(once: Callable[[], Awaitable[T]], metrics: WorkerMetrics) -> T:
    started = time.perf_counter()
    result = "error"
    try:
        value = await once()
        result = "ok"
        return value
    except Unavailable:
        result = "unavailable"
        raise
    finally:
        metrics.observe_pass(result, time.perf_counter() - started, time.time())


async def _after(after: Callable[[], Awaitable[None]] | None) -> None:
    if after is None:
        return
    try:
        await after()
    except Unavailable as exc:
        logger.warning("cannot sample the outcome streams: %s", exc)
