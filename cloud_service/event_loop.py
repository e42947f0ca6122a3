"""Runs the service's coroutine on uvloop when it is installed (the ``cloud`` extra has it), else asyncio.

uvloop's event loop is written in C: the same escalations cost about 10% less CPU than on asyncio's
loop (bench.cloud_service). ``auto`` takes uvloop if it imports; ``uvloop`` requires it; ``asyncio``
never uses it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from confroute.errors import InvalidInput

EventLoop = Literal["auto", "asyncio", "uvloop"]
EVENT_LOOPS: tuple[EventLoop, ...] = ("auto", "asyncio", "uvloop")
T = TypeVar("T")

logger = logging.getLogger(__name__)


def run(main: Coroutine[Any, Any, T], loop: EventLoop = "auto") -> T:
    """``asyncio.run(main)`` on the event loop ``loop`` names."""
    try:
        factory = _factory(loop)
    except InvalidInput:
        main.close()  # never run: no "coroutine was never awaited" warning
        raise
    if factory is None:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def _factory(loop: EventLoop) -> Any:
    if loop not in EVENT_LOOPS:
        raise InvalidInput(f"event_loop must be one of {EVENT_LOOPS}, got {loop!r}", field="event_loop")
    return None if loop == "asyncio" else _uvloop_factory(required=loop == "uvloop")


def _uvloop_factory(*, required: bool) -> Any:
    try:
        module = importlib.import_module("uvloop")
    except ImportError as exc:
        if required:
            raise InvalidInput("event_loop is uvloop, but uvloop is not installed", field="event_loop") from exc
        logger.debug("uvloop is not installed: running on asyncio's event loop")
        return None
    return module.new_event_loop
