"""Each cohort's current bundle release, in one Redis hash (``BundleKeys.releases``: cohort -> signed JSON),
and the catalog the service reads: those pointers and the library the bytes live in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from cloud_service.bundles.library import BundleLibrary
from cloud_service.config import ServiceConfig
from cloud_service.redis_client import RedisClient, connect, translated
from cloud_service.store.schema import BundleKeys
from confroute.contract.bundle_release import BundleRelease

CONNECT_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 5.0


class ReleasePointers:
    """The current release of every cohort."""

    def __init__(self, client: RedisClient, keys: BundleKeys | None = None) -> None:
        self._client = client
        self._keys = keys or BundleKeys()

    async def current(self, cohort: str) -> BundleRelease | None:
        with translated("reading a bundle release"):
            raw = await self._client.hget(self._keys.releases, cohort)  # type: ignore[misc]
        return None if raw is None else BundleRelease.from_json(raw)

    async def set(self, release: BundleRelease) -> None:
        """Makes ``release`` its cohort's current one (durable as Redis is: AOF)."""
        with translated("publishing a bundle release"):
            await self._client.hset(self._keys.releases, release.cohort, release.to_json())  # type: ignore[misc]

    async def all(self) -> dict[str, BundleRelease]:
        with translated("listing bundle releases"):
            raw = await self._client.hgetall(self._keys.releases)  # type: ignore[misc]
        return {_text(cohort): BundleRelease.from_json(value) for cohort, value in sorted(raw.items())}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class BundleCatalog:
    """What ``BundleService`` serves from: the pointers and the library."""

    pointers: ReleasePointers
    library: BundleLibrary


@asynccontextmanager
async def open_bundle_catalog(config: ServiceConfig) -> AsyncIterator[BundleCatalog | None]:
    """The catalog of ``bundle_dir`` (its own Redis client, closed on the way out); None when no bundle
    folder is configured (the service then does not offer ``BundleService``)."""
    if not config.bundle_dir:
        yield None
        return
    client = connect(config.redis_url, connect_timeout_s=CONNECT_TIMEOUT_S, command_timeout_s=COMMAND_TIMEOUT_S)
    try:
        yield BundleCatalog(ReleasePointers(client), BundleLibrary(Path(config.bundle_dir)))
    finally:
        await client.aclose()
