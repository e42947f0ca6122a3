"""The caller of the call being served, set by the interceptor once it has authenticated the call.

A context variable: each gRPC call runs in its own task, so servicers read the caller's identity without
it being threaded through every signature. None means authentication is off (a development service).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from cloud_service.identity.record import Principal


@dataclass(frozen=True)
class Caller:
    """An authenticated principal and the credential it used (``token:<hash>`` or ``cert:<serial>``)."""

    principal: Principal
    credential: str

    def still_valid(self, record: Principal | None, now_s: float) -> bool:
        """Whether ``record`` (re-read after a revocation or rotation) still accepts this credential."""
        if record is None or not record.usable_at(now_s):
            return False
        kind, _, value = self.credential.partition(":")
        held = record.token_hash if kind == "token" else record.cert_serial
        return bool(held) and held == value


_CURRENT: ContextVar[Caller | None] = ContextVar("confroute_caller", default=None)


def current_caller() -> Caller | None:
    """The authenticated caller of this call; None when the service runs without authentication."""
    return _CURRENT.get()


def current_principal() -> Principal | None:
    caller = _CURRENT.get()
    return caller.principal if caller is not None else None


def set_caller(caller: Caller | None) -> None:
    """Called by the interceptor, in the call's own task, before the servicer runs."""
    _CURRENT.set(caller)
