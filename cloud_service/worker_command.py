"""What the cloud's worker commands share (``recalibrate``, ``judge``, ``backpressure``): the service
settings they read, spelled as ``serve`` spells them; ``--once`` / ``--interval`` passes; and their main.

A worker's main reads the service config (flags, then ``CONFROUTE_CLOUD_*``), sets up logging from it,
logs that it starts, and runs its body on a fresh event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from cloud_service.config import ENV_PREFIX, ServiceConfig, config_from
from confroute.logs import configure_logging
from confroute.settings import add_flags, settings_of

logger = logging.getLogger(__name__)

T = TypeVar("T")
LOGGING = ("log_format", "log_level")


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


def run_worker(name: str, args: argparse.Namespace,
               body: Callable[[ServiceConfig], Coroutine[Any, Any, int | None]]) -> int:
    """The worker ``name``'s main: config, logging, then ``body`` until it returns (its exit status)."""
    service = config_from(args, os.environ)
    configure_logging(service.log_format, service.log_level)
    logger.info("cloud-service %s starting", name)
    code = asyncio.run(body(service))
    return 0 if code is None else code


async def run_passes(once: Callable[[], Awaitable[T]], forever: Callable[[float], Awaitable[None]],
                     interval_s: float | None, show: Callable[[T], None]) -> None:
    """Passes every ``interval_s`` until stopped, or one pass whose result is shown."""
    if interval_s is not None:
        await forever(interval_s)
        return
    show(await once())
