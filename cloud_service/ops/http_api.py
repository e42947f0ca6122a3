"""The status API and the dashboard, on the service's HTTP port next to ``/metrics``.

- ``GET /api/status``: :func:`cloud_service.ops.status.service_status` as JSON, for operators only. With
  authentication on, the request must carry ``Authorization: Bearer <token>`` of an operator whose role
  reads policies (401 without a known credential, 403 for a device or another role); without it (a
  development service) it is open, as the gRPC services are.
- ``GET /dashboard``: a static, read-only page (no data in it) whose script asks for the operator token and
  polls ``/api/status`` with it (:mod:`cloud_service.ops` ``dashboard.html``).

The HTTP server's threads run the checks and the status on the service's event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Callable, Coroutine, Iterable
from importlib import resources
from typing import Any, TypeVar

from cloud_service.identity.authenticator import Authenticator
from cloud_service.identity.record import POLICY_READ
from cloud_service.metrics import WsgiApp
from cloud_service.ops.status import StatusSources, service_status
from confroute.errors import ConfrouteError, PermissionDenied, Unauthenticated

T = TypeVar("T")
STATUS_PATH = "/api/status"
DASHBOARD_PATH = "/dashboard"
TIMEOUT_S = 5.0
_STATUS_LINES = {200: "200 OK", 401: "401 Unauthorized", 403: "403 Forbidden", 503: "503 Service Unavailable"}


def status_routes(
    loop: asyncio.AbstractEventLoop, sources: StatusSources, authenticator: Authenticator | None
) -> dict[str, WsgiApp]:
    """The status API and the dashboard page, for :func:`cloud_service.metrics.serve_wsgi`."""
    page = resources.files("cloud_service.ops").joinpath("dashboard.html").read_bytes()

    def status(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            _run(loop, authorize(authenticator, environ.get("HTTP_AUTHORIZATION", ""),
                                 "http:" + environ.get("REMOTE_ADDR", "")))
            code, body = 200, _run(loop, service_status(sources))
        except ConfrouteError as exc:
            code, body = _error_code(exc), {"error": str(exc)}
        except concurrent.futures.TimeoutError:
            code, body = 503, {"error": f"the status took longer than {TIMEOUT_S:g} s"}
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        if code == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="confroute"'))
        start_response(_STATUS_LINES[code], headers)
        return [json.dumps(body, sort_keys=True, allow_nan=False).encode()]

    def dashboard(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                                  ("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline' "
                                                              "'self'; style-src 'unsafe-inline'")])
        return [page]

    return {STATUS_PATH: status, DASHBOARD_PATH: dashboard}


async def authorize(authenticator: Authenticator | None, authorization: str, peer: str = "") -> None:
    """Unauthenticated or PermissionDenied unless ``authorization`` names an operator who reads policies
    (``peer``: the caller's address, whose invalid credentials are limited as on the gRPC port)."""
    if authenticator is None:
        return
    metadata = [("authorization", authorization)] if authorization else []
    caller = await authenticator.authenticate(metadata, lambda: {}, peer)
    principal = caller.principal
    if principal.is_device or not principal.allows(POLICY_READ):
        raise PermissionDenied(f"{principal.kind} {principal.principal_id} may not read the status")


def _run(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(TIMEOUT_S)


def _error_code(exc: ConfrouteError) -> int:
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, PermissionDenied):
        return 403
    return 503
