"""Wiring identity into the running service: the authenticator, its feed follower and the per-device rate
limiter on one Redis client, and the server's TLS credentials. Built in ``start_service`` from the one
config; nothing at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from cloud_service.config import ServiceConfig
from cloud_service.identity.authenticator import Authenticator, AuthSettings
from cloud_service.identity.rate import Rate, RateLimiter
from cloud_service.identity.record import ESCALATE, UPLOAD
from cloud_service.identity.registry import IdentityRegistry
from cloud_service.identity.tokens import load_secret
from cloud_service.redis_client import connect
from cloud_service.task_stop import stop_task
from confroute.errors import InvalidInput, Unavailable

CONNECT_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class IdentityServices:
    """What an authenticating service runs: the authenticator and the per-device rate limiter."""

    authenticator: Authenticator
    rate: RateLimiter


def rates(config: ServiceConfig) -> dict[str, Rate]:
    return {
        ESCALATE: Rate(config.rate_escalations_per_s, config.rate_escalation_burst),
        UPLOAD: Rate(config.rate_uploads_per_s, config.rate_upload_burst),
    }


@contextlib.asynccontextmanager
async def open_identity(
    config: ServiceConfig, settings: AuthSettings | None = None
) -> AsyncIterator[IdentityServices | None]:
    """The authenticator following the revocation feed and the rate limiter, or None when the config
    authenticates nobody. The invalid-credential budget comes from the config (over ``settings``)."""
    if not config.authenticates:
        yield None
        return
    hasher = load_secret(Path(config.identity_secret)) if config.identity_secret else None
    redis = connect(config.redis_url, connect_timeout_s=CONNECT_TIMEOUT_S, command_timeout_s=COMMAND_TIMEOUT_S)
    flood = {"flood_burst": float(config.invalid_credential_burst), "flood_per_s": config.invalid_credentials_per_s}
    authenticator = Authenticator(IdentityRegistry(redis), hasher, dataclasses.replace(settings or AuthSettings(),
                                                                                       **flood))
    with contextlib.suppress(Unavailable):  # Redis may come later; calls are refused UNAVAILABLE until then
        await authenticator.refresh()
    follower = asyncio.create_task(authenticator.follow(), name="revocation-feed")
    try:
        yield IdentityServices(authenticator, RateLimiter(redis, rates(config), lease_ttl_s=config.rate_lease_s))
    finally:
        await stop_task(follower)
        await redis.aclose()


def server_credentials(config: ServiceConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from the configured files (client certificates required with a client CA); None: no TLS."""
    if not config.tls_cert:
        return None
    client_ca = _read(config.tls_client_ca, "tls_client_ca") if config.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(_read(config.tls_key, "tls_key"), _read(config.tls_cert, "tls_cert"))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _read(path: str, name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {name} {path}: {exc}", field=name) from exc
