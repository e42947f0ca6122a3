"""The server side of identity: the credential a call presents -> its :class:`Caller`, or UNAUTHENTICATED.

Two credentials are accepted: ``authorization: Bearer <token>`` metadata (looked up by keyed hash), and
the verified TLS client certificate (``auth_context``), whose URI SAN names the device and whose serial
must be the one its record holds. Verified credentials are cached for ``cache_ttl_s`` (the hot path,
:meth:`Authenticator.cached`, is one dict lookup without an await), unknown ones for ``negative_ttl_s``.

A flood of invalid bearer tokens is limited per peer address (:mod:`.flood`): a malformed token is refused
without a hash, and while an address has spent its budget of invalid credentials, tokens not verified within
``known_ttl_s`` are refused (RESOURCE_EXHAUSTED) before any hash or Redis read; a device that shares the
flooder's address keeps its service (its token is known, and is still looked up and checked as usual).

Revocation and rotation: :meth:`Authenticator.follow` reads the registry's revocation feed every
``feed_interval_s``; for each principal named there it drops what it cached and ends the open streams
(:meth:`Authenticator.watching`) whose credential the re-read record no longer accepts. A revoked or
rotated-out credential is therefore refused on every replica within ``feed_interval_s`` plus one Redis
round trip, and at most ``cache_ttl_s`` even while the feed cannot be read (defaults 1 s and 2 s; the
documented bound is 5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from cloud_service.identity.ca import identity_of
from cloud_service.identity.context import Caller
from cloud_service.identity.flood import FailureBudget, peer_host
from cloud_service.identity.record import Principal
from cloud_service.identity.registry import IdentityRegistry
from cloud_service.identity.tokens import TokenHasher, well_formed
from confroute.errors import ConfrouteError, Unauthenticated

logger = logging.getLogger(__name__)

Metadata = Sequence[tuple[str, str | bytes]]
AuthContext = Mapping[str, Iterable[bytes]]
K = TypeVar("K")
V = TypeVar("V")
_MAX_CACHED = 100_000
_BEARER = "bearer "


@dataclass(eq=False)  # hashed by identity: one entry per open stream
class _Stream:
    caller: Caller
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class AuthSettings:
    """How long verified and unknown credentials are remembered, and how often the feed is read."""

    cache_ttl_s: float = 2.0
    negative_ttl_s: float = 1.0
    feed_interval_s: float = 1.0
    flood_burst: float = 20.0  # invalid credentials one peer address may present at once ...
    flood_per_s: float = 2.0  # ... and then per second
    known_ttl_s: float = 600.0  # a token verified this recently is looked up even while its address floods


class Authenticator:
    """Authenticates calls against an :class:`IdentityRegistry`; one per server process."""

    def __init__(
        self,
        registry: IdentityRegistry,
        hasher: TokenHasher | None,
        settings: AuthSettings = AuthSettings(),
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._hasher = hasher
        self._settings = settings
        self._clock = clock
        self._wall = wall
        self._cache: dict[object, tuple[Caller, float]] = {}
        self._keys_of: dict[str, set[object]] = {}  # principal id -> its cache keys (revocations drop them)
        self._unknown: dict[object, float] = {}
        self._streams: dict[str, set[_Stream]] = {}
        self._feed_ms: int | None = None
        self._failures = FailureBudget(settings.flood_burst, settings.flood_per_s, clock)
        self._known: dict[str, float] = {}  # tokens verified within known_ttl_s: exempt from the flood limit

    def cached(self, metadata: Metadata, auth_context: Callable[[], AuthContext]) -> Caller | None:
        """The caller when its credential was verified within ``cache_ttl_s`` (the hot path: no await, no
        hash); None when :meth:`authenticate` must look it up. Raises Unauthenticated like it."""
        token = _bearer(metadata)
        key: object = ("t", token) if token is not None else _cert_key(auth_context())
        caller = self._cached(key) if key is not None else None
        return self._usable(caller) if caller is not None else None

    async def authenticate(
        self, metadata: Metadata, auth_context: Callable[[], AuthContext], peer: str = ""
    ) -> Caller:
        """The caller, from its bearer token or else its client certificate; Unauthenticated otherwise
        (CredentialFlood while ``peer``, the call's ``context.peer()``, has presented too many invalid ones)."""
        token = _bearer(metadata)
        if token is not None:
            return await self._by_token(token, peer_host(peer))
        pem = _peer_cert(auth_context())
        if pem is not None:
            return await self._by_cert(pem)
        raise Unauthenticated("no credential: present a client certificate or an authorization: Bearer token")

    async def _by_token(self, token: str, peer: str) -> Caller:
        # Cached by the token itself, which is in this process's memory anyway (it came with the call): a hit
        # costs a dict lookup instead of an HMAC. Redis is asked by the keyed hash only.
        if self._hasher is None:
            raise Unauthenticated("this service accepts no bearer tokens")
        key = ("t", token)
        caller = self._cached(key)
        if caller is None:
            if self._known.get(token, 0.0) <= self._clock():
                self._failures.check(peer)
            if not well_formed(token):
                self._failures.charge(peer)
                raise Unauthenticated("unknown credential")
            token_hash = self._hasher.hash(token)
            record = await self._registry.by_token_hash(token_hash)
            if record is None:
                self._failures.charge(peer)
            else:
                _bounded(self._known)[token] = self._clock() + self._settings.known_ttl_s
            caller = self._remember(key, record, f"token:{token_hash}")
        return self._usable(caller)

    async def _by_cert(self, pem: bytes) -> Caller:
        key = ("c", pem)
        caller = self._cached(key)
        if caller is None:
            named = identity_of(pem)
            record = await self._registry.get(named.device_id) if named is not None else None
            if record is not None and named is not None and record.cert_serial != named.serial:
                record = None  # a rotated-out certificate: it verifies, but is no longer the device's
            caller = self._remember(key, record, f"cert:{named.serial if named else ''}")
        return self._usable(caller)

    def _cached(self, key: object) -> Caller | None:
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        unknown_until = self._unknown.get(key)
        if unknown_until is not None and unknown_until > now:
            raise Unauthenticated("unknown credential")
        return None

    def _remember(self, key: object, record: Principal | None, credential: str) -> Caller:
        now = self._clock()
        if record is None:
            _bounded(self._unknown)[key] = now + self._settings.negative_ttl_s
            raise Unauthenticated("unknown credential")
        caller = Caller(record, credential)
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
            self._keys_of.clear()
        self._cache[key] = (caller, now + self._settings.cache_ttl_s)
        self._keys_of.setdefault(record.principal_id, set()).add(key)
        return caller

    def _usable(self, caller: Caller) -> Caller:
        if not caller.principal.usable_at(self._wall()):
            state = "revoked" if caller.principal.revoked else "expired"
            raise Unauthenticated(f"the credential of {caller.principal.principal_id} is {state}")
        return caller

    @contextlib.contextmanager
    def watching(self, caller: Caller) -> Iterator[asyncio.Event]:
        """For a long-lived stream: an event set once the caller's credential is revoked or rotated out."""
        stream = _Stream(caller)
        streams = self._streams.setdefault(caller.principal.principal_id, set())
        streams.add(stream)
        try:
            yield stream.ended
        finally:
            streams.discard(stream)
            if not streams:
                self._streams.pop(caller.principal.principal_id, None)

    def open_streams(self, principal_id: str) -> int:
        return len(self._streams.get(principal_id, ()))

    async def follow(self) -> None:
        """Reads the revocation feed every ``feed_interval_s`` until cancelled; outages are retried."""
        while True:
            try:
                await self.refresh()
            except ConfrouteError as exc:
                logger.warning("cannot read the revocation feed: %s", exc)
            await asyncio.sleep(self._settings.feed_interval_s)

    async def refresh(self) -> None:
        """Applies the revocations and rotations recorded since the last read."""
        # Re-reads a window before the last entry seen: applying a revocation again is harmless, and a
        # feed written by several hosts' clocks is not strictly in order.
        since = -1 if self._feed_ms is None else self._feed_ms - 5_000
        rows = await self._registry.revoked_since(since)
        if self._feed_ms is None:  # the first read only sets the mark: nothing is cached yet
            self._feed_ms = max((ms for _, ms in rows), default=0)
            return
        for principal_id in {principal_id for principal_id, _ in rows}:
            await self._apply(principal_id)
        self._feed_ms = max([self._feed_ms, *(ms for _, ms in rows)])

    async def _apply(self, principal_id: str) -> None:
        for key in self._keys_of.pop(principal_id, ()):
            self._cache.pop(key, None)
        streams = self._streams.get(principal_id)
        if not streams:
            return
        record = await self._registry.get(principal_id)
        for stream in list(streams):
            if not stream.caller.still_valid(record, self._wall()):
                stream.ended.set()


def _bearer(metadata: Metadata) -> str | None:
    for key, value in metadata:
        if key == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            if text[:7].lower() != _BEARER:
                raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
            return text[7:].strip()
    return None


def _cert_key(auth_context: AuthContext) -> tuple[str, bytes] | None:
    pem = _peer_cert(auth_context)
    return ("c", pem) if pem is not None else None


def _peer_cert(auth_context: AuthContext) -> bytes | None:
    certs = list(auth_context.get("x509_pem_cert", ()))
    return certs[0] if certs else None


def _bounded(cache: dict[K, V]) -> dict[K, V]:
    if len(cache) >= _MAX_CACHED:
        cache.clear()
    return cache
