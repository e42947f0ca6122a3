"""Helpers the suites share: Triton's model environment (or a skip) and an event loop in a thread."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cloud_service.inference.tritonserver import probe_backend_environment
from confroute.errors import Unavailable

T = TypeVar("T")
WAIT_S = 20.0


def triton_python_or_skip() -> Path:
    """The Python of Triton's model environment (``CONFROUTE_TRITON_PYTHON``, which ``make test`` sets);
    skips the calling test when it is not set or cannot run tritonserver's python backend."""
    configured = os.environ.get("CONFROUTE_TRITON_PYTHON")
    if not configured:
        pytest.skip("CONFROUTE_TRITON_PYTHON is not set (a venv with nvidia-pytriton==0.7.0 and numpy<2)")
    try:
        return probe_backend_environment(Path(configured)).python
    except Unavailable as exc:
        pytest.skip(f"CONFROUTE_TRITON_PYTHON={configured} cannot run tritonserver: {exc}")


class LoopThread:
    """An asyncio event loop running in a thread: servers under test and their async clients live on it."""

    def __init__(self, name: str = "test-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = WAIT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.run(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT_S)
        self.loop.close()
