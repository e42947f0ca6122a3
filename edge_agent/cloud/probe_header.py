"""The probe version every call carries, read when the call starts: a probe delivered with a policy
(``edge_agent.cloud.probe_install``) changes it while the agent runs, and the cloud's device directory shows
the one in use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import grpc

from confroute.contract.metadata import PROBE_VERSION_KEY


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class ProbeVersionHeader(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds ``confroute-probe-version: probe_version()`` to every call (nothing while it is empty)."""

    def __init__(self, probe_version: Callable[[], str]) -> None:
        self._probe_version = probe_version

    def _details(self, details: Any) -> _CallDetails:
        metadata = [item for item in (details.metadata or ()) if item[0] != PROBE_VERSION_KEY]
        version = self._probe_version()
        if version:
            metadata.append((PROBE_VERSION_KEY, version))
        return _CallDetails(details.method, details.timeout, tuple(metadata), details.credentials,
                            getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def with_probe_version(channel: grpc.Channel, probe_version: Callable[[], str]) -> grpc.Channel:
    """``channel`` whose calls carry the probe version current when each starts."""
    return grpc.intercept_channel(channel, ProbeVersionHeader(probe_version))
