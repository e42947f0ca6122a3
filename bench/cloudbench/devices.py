"""The enrolled devices the cloud benchmark escalates as: authentication and rate limits are on, as in production.

Each device gets a bearer token (hashed under a token secret written for the run) and a record in the
benchmark's Redis, in the load generator's cohort. The load generator spreads its calls over the devices
(one per concurrent worker, so no device's per-replica cap of concurrent escalations refuses a call); the
service is started with ``--identity-secret`` and a per-device escalation rate high enough never to refuse
one, so every call pays the token check and the Redis token bucket without being turned away.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from cloud_service.identity.record import DEVICE_SCOPES, Principal
from cloud_service.identity.registry import IdentityRegistry
from cloud_service.identity.tokens import load_secret, new_token, write_secret
from cloud_service.redis_client import connect

RATE_PER_DEVICE_S = 100_000.0  # admitted, not refused: the bucket is checked on every call all the same
BURST_PER_DEVICE = 100_000


@dataclass(frozen=True)
class Device:
    """An enrolled device and the token it presents."""

    device_id: str
    token: str


def enrol(redis_url: str, secret: Path, cohort: str, count: int, prefix: str) -> list[Device]:
    """``count`` devices of ``cohort`` in ``redis_url``, tokens hashed under ``secret`` (written if absent)."""
    write_secret(secret)
    hasher = load_secret(secret)
    devices = [Device(f"{prefix}-{i}", new_token()) for i in range(count)]

    async def create() -> None:
        redis = connect(redis_url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:
            registry = IdentityRegistry(redis)
            for device in devices:
                await registry.create(Principal(device.device_id, "device", cohort, int(time.time()), 0,
                                                DEVICE_SCOPES, token_hash=hasher.hash(device.token)))
        finally:
            await redis.aclose()

    asyncio.run(create())
    return devices
