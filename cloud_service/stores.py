"""The Redis-backed stores of the cloud's commands, wired from the service's config in one place.

``serve`` runs on the outcome log and the policy store (:func:`open_redis_stores`, its stores factory);
``policy ...`` and ``backpressure`` on the policy store alone (:func:`open_policy_store`); the workers
read the outcome streams through a Redis client (:func:`open_redis_client`) and ``recalibrate``
publishes through the policy store. Every store signs with ``policy_signing_key`` when it is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from cloud_service.config import ServiceConfig
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.policies.config import PolicyStoreConfig
from cloud_service.policies.redis_store import RedisPolicyStore
from cloud_service.ports import OutcomeLog, PolicyStore
from cloud_service.redis_client import RedisClient, connect
from confroute.signing import SigningKey, load_signing_key

WORKER_CONNECT_TIMEOUT_S = 1.0
WORKER_COMMAND_TIMEOUT_S = 30.0  # a worker's pass reads whole stream batches; slower than a request's writes


def outcome_log_config(config: ServiceConfig, *, retain_text: bool | None = None) -> OutcomeLogConfig:
    """The outcome log at ``redis_url``; ``retain_text`` None keeps the service's setting."""
    return OutcomeLogConfig(url=config.redis_url,
                            retain_text=config.retain_text if retain_text is None else retain_text,
                            text_ttl_s=config.text_ttl_s,
                            allow_volatile=config.allow_volatile_redis)


def signer(config: ServiceConfig) -> SigningKey | None:
    """The key published policies are signed with; None: they go out unsigned."""
    return load_signing_key(Path(config.policy_signing_key)) if config.policy_signing_key else None


def policy_store(config: ServiceConfig) -> RedisPolicyStore:
    """The policy store at ``redis_url``, signing with the configured key; the caller closes it."""
    return RedisPolicyStore(PolicyStoreConfig(url=config.redis_url), signer=signer(config))


@asynccontextmanager
async def open_policy_store(config: ServiceConfig) -> AsyncIterator[RedisPolicyStore]:
    """The policy store, closed on the way out."""
    store = policy_store(config)
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def open_redis_stores(config: ServiceConfig) -> AsyncIterator[tuple[OutcomeLog, PolicyStore]]:
    """The outcome log (started) and the policy store: ``serve``'s stores factory."""
    from cloud_service.outcomes.redis_log import RedisOutcomeLog

    outcome_log = RedisOutcomeLog(outcome_log_config(config))
    async with open_policy_store(config) as store:
        await outcome_log.start()
        try:
            yield outcome_log, store
        finally:
            await outcome_log.close()


@asynccontextmanager
async def open_redis_client(config: ServiceConfig) -> AsyncIterator[RedisClient]:
    """A client of ``redis_url`` with a worker's timeouts, closed on the way out."""
    client = connect(config.redis_url, connect_timeout_s=WORKER_CONNECT_TIMEOUT_S,
                     command_timeout_s=WORKER_COMMAND_TIMEOUT_S)
    try:
        yield client
    finally:
        await client.aclose()
