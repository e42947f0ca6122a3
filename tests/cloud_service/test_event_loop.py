"""cloud_service.event_loop: the coroutine runs on the loop the config names."""

from __future__ import annotations

import asyncio
import inspect
import sys

import pytest

from cloud_service import event_loop
from cloud_service.config import ServiceConfig
from confroute.errors import InvalidInput


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_never_uses_uvloop() -> None:
    assert not event_loop.run(_loop_module(), "asyncio").startswith("uvloop")


def test_uvloop_runs_on_uvloop() -> None:
    pytest.importorskip("uvloop")
    assert event_loop.run(_loop_module(), "uvloop").startswith("uvloop")
    assert event_loop.run(_loop_module(), "auto").startswith("uvloop")


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails
    assert not event_loop.run(_loop_module(), "auto").startswith("uvloop")
    coroutine = _loop_module()
    with pytest.raises(InvalidInput, match="uvloop is not installed"):
        event_loop.run(coroutine, "uvloop")
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED


def test_unknown_loop_is_refused_and_the_coroutine_closed() -> None:
    coroutine = _loop_module()
    with pytest.raises(InvalidInput, match="event_loop"):
        event_loop.run(coroutine, "trio")  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED  # no "never awaited" warning


def test_config_checks_the_event_loop() -> None:
    assert ServiceConfig().event_loop == "auto"
    with pytest.raises(InvalidInput, match="event_loop"):
        ServiceConfig(event_loop="trio")  # type: ignore[arg-type]
