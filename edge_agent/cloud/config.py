"""How the device reaches the cloud: one frozen config, built once in the agent's ``main()`` and passed down."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from confroute.backoff import Backoff
from confroute.errors import InvalidInput
from edge_agent.cloud.breaker import BreakerSettings

RETRY_BACKOFF = Backoff(base_s=0.05, cap_s=1.0)
RECONNECT_BACKOFF = Backoff(base_s=1.0, cap_s=60.0)
BREAKER = BreakerSettings(failure_threshold=5, cooldown_s=30.0)


@dataclass(frozen=True)
class CloudConfig:
    """The cloud's address, the time budgets, retries, breaker, TLS files and the device's credential.

    ``deadline_s`` is the budget of one escalation, retries and backoff included: each attempt gets
    what is left of it. ``retries`` counts attempts after the first, made only on retryable codes.
    TLS is on when ``tls`` is set or any certificate file is given (no ``root_certs``: the system's
    roots); ``client_cert`` with ``client_key`` adds a client certificate (mTLS). ``server_name``
    overrides the name the server's certificate is checked against. ``token`` is sent as
    ``authorization: Bearer <token>`` on every call (kept out of ``repr``). A policy watch is renewed
    every ``watch_period_s`` (its deadline) and reconnects with ``reconnect`` backoff after failures.
    """

    target: str
    deadline_s: float = 10.0
    retries: int = 2
    backoff: Backoff = RETRY_BACKOFF
    breaker: BreakerSettings = BREAKER
    tls: bool = False
    root_certs: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str = ""
    token: str = field(default="", repr=False)
    probe_version: str = ""  # the bundle's (Manifest.probe_version), sent on every call; set by the app
    watch_period_s: float = 300.0
    reconnect: Backoff = RECONNECT_BACKOFF
    # The channel's own reconnect backoff, kept short so that a cloud that comes back is used soon
    # (gRPC's default grows to 120 s, and calls fail at once while it waits).
    max_reconnect_backoff_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.target.strip():
            raise InvalidInput("cloud target must be host:port", field="cloud.target")
        for name in ("deadline_s", "watch_period_s", "max_reconnect_backoff_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InvalidInput(f"cloud {name} must be > 0 seconds, got {value}", field=f"cloud.{name}")
        if self.retries < 0:
            raise InvalidInput(f"cloud retries must be >= 0, got {self.retries}", field="cloud.retries")
        if (self.client_cert is None) != (self.client_key is None):
            raise InvalidInput("client_cert and client_key go together", field="cloud.client_cert")

    @property
    def uses_tls(self) -> bool:
        return self.tls or any(p is not None for p in (self.root_certs, self.client_cert, self.client_key))
