"""Enrolled principals in Redis: create, read, list, revoke, rotate, and the revocation feed.

A record is a JSON string under :meth:`IdentityKeys.principal`; a bearer token's keyed hash points to
its principal's id (:meth:`IdentityKeys.token`). Writes that touch several keys are one MULTI (all keys
share one hash tag). Each revocation or rotation is also added to a sorted feed that every replica's
:class:`~cloud_service.identity.authenticator.Authenticator` follows to drop what it cached.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from typing import cast

from cloud_service.identity.record import Principal, check_id
from cloud_service.redis_client import RedisClient, translated
from cloud_service.store.schema import IdentityKeys
from confroute.errors import InvalidInput

FEED_KEEP_S = 3600  # revocation feed entries older than this are trimmed


class IdentityRegistry:
    """The principals of one fleet; the client is the caller's to close."""

    def __init__(self, redis: RedisClient, keys: IdentityKeys | None = None) -> None:
        self._redis = redis
        self.keys = keys or IdentityKeys()

    async def create(self, record: Principal) -> None:
        """Stores a new principal; an id already enrolled is InvalidInput (rotate or revoke it instead)."""
        with translated("enrolling a principal"):
            created = await self._redis.set(self.keys.principal(record.principal_id), record.to_json(), nx=True)
            if not created:
                raise InvalidInput(f"{record.principal_id} is already enrolled", field="device_id")
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self.keys.members, record.principal_id)
                if record.token_hash:
                    pipe.set(self.keys.token(record.token_hash), record.principal_id)
                await pipe.execute()

    async def get(self, principal_id: str) -> Principal | None:
        with translated("reading a principal"):
            raw = await self._redis.get(self.keys.principal(principal_id))
        return Principal.from_json(raw) if raw is not None else None

    async def by_token_hash(self, token_hash: str) -> Principal | None:
        """The principal whose *current* token has this hash, or None."""
        with translated("looking up a token"):
            principal_id = await self._redis.get(self.keys.token(token_hash))
        if principal_id is None:
            return None
        record = await self.get(_text(principal_id))
        return record if record is not None and record.token_hash == token_hash else None

    async def all(self) -> list[Principal]:
        """Every enrolled principal, sorted by id."""
        with translated("listing principals"):
            members = await self._redis.smembers(self.keys.members)
        ids = sorted(_text(member) for member in members)
        records = [await self.get(principal_id) for principal_id in ids]
        return [record for record in records if record is not None]

    async def revoke(self, principal_id: str) -> Principal:
        """Marks the principal revoked and forgets its token; every replica refuses it within its feed interval."""
        record = await self._require(principal_id)
        revoked = replace(record, revoked=True)
        await self._replace(record, revoked)
        return revoked

    async def replace_credentials(
        self, principal_id: str, *, token_hash: str | None, cert_serial: str | None
    ) -> Principal:
        """Rotation: the new credentials replace the old ones, which stop working on every replica."""
        record = await self._require(principal_id)
        if record.revoked:
            raise InvalidInput(f"{principal_id} is revoked; enrol it again under a new id", field="device_id")
        updated = record.with_credentials(token_hash=token_hash, cert_serial=cert_serial)
        await self._replace(record, updated)
        return updated

    async def revoked_since(self, after_ms: int) -> list[tuple[str, int]]:
        """(principal id, milliseconds) of revocations and rotations strictly after ``after_ms``, oldest first."""
        with translated("reading the revocation feed"):
            rows = await self._redis.zrangebyscore(self.keys.revocations, f"({after_ms}", "+inf", withscores=True)
        return [(_text(member), int(score)) for member, score in cast("Iterable[tuple[object, float]]", rows)]

    async def _require(self, principal_id: str) -> Principal:
        record = await self.get(check_id(principal_id))
        if record is None:
            raise InvalidInput(f"{principal_id} is not enrolled", field="device_id")
        return record

    async def _replace(self, old: Principal, new: Principal) -> None:
        now_ms = int(time.time() * 1000)
        with translated("updating a principal"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self.keys.principal(new.principal_id), new.to_json())
                if old.token_hash and (new.revoked or old.token_hash != new.token_hash):
                    pipe.delete(self.keys.token(old.token_hash))
                if new.token_hash and not new.revoked:
                    pipe.set(self.keys.token(new.token_hash), new.principal_id)
                pipe.zadd(self.keys.revocations, {new.principal_id: now_ms})
                pipe.zremrangebyscore(self.keys.revocations, "-inf", now_ms - FEED_KEEP_S * 1000)
                await pipe.execute()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
