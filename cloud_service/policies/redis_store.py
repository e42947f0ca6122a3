"""Versioned routing policies and their rollout in Redis, per (edge model version, cohort).

Keys (built by ``cloud_service.store.schema``), all sharing the hash tag ``{<edge model version>|<cohort>}``, so one
cohort's keys are in one Redis Cluster slot (and the Lua scripts may touch them together):

- ``<prefix>:{tag}:versions`` - hash: version -> the ``confroute.v1.Policy`` bytes (signed when the store
  has a signing key). A version's content never changes once stored.
- ``<prefix>:{tag}:policies`` - stream: the rollout history, one entry per transition, holding the
  :class:`~cloud_service.policies.state.RolloutState` after it plus ``action``, ``reason`` and ``at_us``
  (about ``history`` entries are kept). The last entry is the current state.

Every transition is one Lua script that appends the new state only if the last entry is still the one
the transition was computed from (compare-and-set) and stores its new versions in the same step, so
concurrent operators, workers and back-pressure controllers never lose each other's changes (a
conflict is retried). Watchers of this process share one follower per key (:mod:`.hub`), which blocks on
``XREAD`` after the last entry seen, loads the versions the new state names, and wakes every watcher
with one ``asyncio.Event``; after losing Redis it reconnects with jittered backoff and starts again from
the current state. The transitions themselves are in :mod:`.operations`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from google.protobuf.message import DecodeError

from cloud_service.policies import operations
from cloud_service.policies.config import PolicyStoreConfig
from cloud_service.policies.hub import PolicyHub
from cloud_service.policies.state import (
    NO_ENTRY,
    HistoryEntry,
    Rollout,
    RolloutState,
    TransitionConflict,
    entry_from_fields,
    state_to_fields,
)
from cloud_service.redis_client import connect, read_entries, stream_entries, translated
from cloud_service.store.schema import PolicyKeys
from cloud_service.store.scripts import script
from confroute.backoff import Backoff, BackoffSchedule
from confroute.contract.policy import Policy
from confroute.errors import InvalidPolicy, Unavailable
from confroute.signing import PolicyVerifier, SigningKey, TrustedKeys, sign_policy
from confroute.signing.canonical import microseconds_since_epoch
from confroute.v1 import fleet_pb2

logger = logging.getLogger(__name__)

_MICROSECOND = timedelta(microseconds=1)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class RedisPolicyStore:
    """A :class:`cloud_service.ports.PolicyStore` with canary rollout, history and signing."""

    def __init__(
        self,
        config: PolicyStoreConfig,
        *,
        signer: SigningKey | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._config = config
        self._signer = signer
        # With a signing key, what is read back must carry its valid signature: a version altered inside Redis
        # is never served, nor re-issued (pin, rollback, back-pressure start from what was read).
        self._verify = PolicyVerifier(TrustedKeys.of([signer.private_key.public_key()])) if signer else None
        self._clock = clock
        self._client = connect(
            config.url, connect_timeout_s=config.connect_timeout_s, command_timeout_s=config.command_timeout_s
        )
        self._transition = script("transition")  # lua/transition.lua
        self._known: dict[str, PolicyKeys] = {}  # stream -> its partition's keys
        self._hub: PolicyHub[Rollout] = PolicyHub(self._follow)

    @property
    def config(self) -> PolicyStoreConfig:
        return self._config

    @property
    def watchers(self) -> int:
        """Watch calls this process serves now."""
        return self._hub.watchers

    # -- reading ---------------------------------------------------------------------------------

    async def current(self, edge_model_version: str, cohort: str, device_id: str = "") -> Policy | None:
        """The policy this device runs (the control's when ``device_id`` is empty), if any was published."""
        rollout = await self.rollout(edge_model_version, cohort)
        return rollout.policy_for(device_id)

    async def rollout(self, edge_model_version: str, cohort: str) -> Rollout:
        """The current state and the policies it names."""
        return await self._rollout(self._keys(edge_model_version, cohort))

    async def version(self, edge_model_version: str, cohort: str, version: str) -> Policy | None:
        """A stored version, current or not."""
        return (await self._load(self._keys(edge_model_version, cohort), [version])).get(version)

    async def history(self, edge_model_version: str, cohort: str, count: int = 20) -> list[HistoryEntry]:
        """The last ``count`` transitions, newest first."""
        keys = self._keys(edge_model_version, cohort)
        with translated("reading the policy history"):
            reply = await self._client.xrevrange(keys.stream, count=count)
        return [entry_from_fields(entry_id, fields) for entry_id, fields in stream_entries(reply)]

    def watch(
        self, edge_model_version: str, cohort: str, known_version: str, device_id: str = ""
    ) -> AsyncGenerator[Policy, None]:
        """Yields the device's policy if its version is not ``known_version``, then each later change of it.

        Never ends by itself; Redis outages are waited out (the caller cancels or ``aclose()``s it).
        """
        return self._watch(self._keys(edge_model_version, cohort), known_version, device_id)

    # -- writing (see operations for what each transition does) --------------------------------------

    async def publish(self, policy: Policy) -> None:
        """Makes ``policy`` the control for every device of its key (ending any canary); see
        :func:`cloud_service.policies.operations.publish`."""
        await operations.publish(self, policy)

    def issue(self, policy: Policy, state: RolloutState) -> Policy:
        """``policy`` as the cloud issues it: ``issued_at`` now, but strictly after every version issued for
        its key, and signed when the store has a signing key."""
        now = self._clock()
        floor = datetime(1970, 1, 1, tzinfo=timezone.utc) + (state.issued_us + 1) * _MICROSECOND
        stamped = replace(policy, issued_at=max(now, floor), signature=b"", key_id="")
        return sign_policy(stamped, self._signer) if self._signer is not None else stamped

    async def commit(
        self,
        edge_model_version: str,
        cohort: str,
        base: Rollout,
        state: RolloutState,
        new_policies: Iterable[Policy],
        action: str,
        reason: str,
    ) -> None:
        """Appends ``state`` if ``base`` is still current, storing ``new_policies``; raises
        :class:`TransitionConflict` when it is not, InvalidPolicy when a version exists with other content."""
        keys = self._keys(edge_model_version, cohort)
        pairs: list[str | bytes] = []
        issued = state.issued_us
        for policy in new_policies:
            pairs += [policy.policy_version, policy.to_pb().SerializeToString(deterministic=True)]
            issued = max(issued, microseconds_since_epoch(policy.issued_at))
        state = replace(state, seq=base.state.seq + 1, issued_us=issued)
        entry = state_to_fields(state, action, reason, microseconds_since_epoch(self._clock()))
        args = [base.entry_id, self._config.history, len(pairs) // 2, *pairs]
        args += [item for pair in entry.items() for item in pair]
        with translated("publishing a policy"):
            outcome = await self._transition.run(self._client, [keys.stream, keys.versions], args)
        if outcome == -2:
            raise TransitionConflict(keys.stream)
        if outcome == -1:
            raise InvalidPolicy(
                f"a version in {[p for p in pairs[::2]]} is already stored for edge model {edge_model_version!r}, "
                f"cohort {cohort!r}, with other content; publish changes under a new version",
                field="policy_version",
            )
        logger.info("policy rollout %s %s: %s (%s)", keys.stream, action, state, reason)

    async def close(self) -> None:
        """Stops the followers and closes the connections; cancel or close the watchers first."""
        await self._hub.close()
        await self._client.aclose()

    # -- internals -------------------------------------------------------------------------------

    def _keys(self, edge_model_version: str, cohort: str) -> PolicyKeys:
        """The partition's keys, remembered by stream so that a follower of the stream finds them again."""
        keys = self._config.keys(edge_model_version, cohort)
        self._known.setdefault(keys.stream, keys)
        return keys

    async def _watch(self, keys: PolicyKeys, known_version: str, device_id: str) -> AsyncGenerator[Policy, None]:
        async with self._hub.subscribe(keys.stream) as feed:
            while True:
                rollout, changed = feed.view, feed.changed
                policy = rollout.policy_for(device_id) if rollout is not None else None
                if policy is not None and policy.policy_version != known_version:
                    known_version = policy.policy_version
                    yield policy
                await changed.wait()

    async def _rollout(self, keys: PolicyKeys) -> Rollout:
        with translated("reading the current policy"):
            reply = await self._client.xrevrange(keys.stream, count=1)
        entries = stream_entries(reply)
        if not entries:
            return Rollout(NO_ENTRY, RolloutState(), {})
        entry = entry_from_fields(*entries[0])
        return Rollout(entry.entry_id, entry.state, await self._load(keys, entry.state.versions))

    async def _load(self, keys: PolicyKeys, versions: Iterable[str], cache: dict[str, Policy] | None = None
                    ) -> dict[str, Policy]:
        versions = tuple(versions)
        wanted = [v for v in versions if cache is None or v not in cache]
        found = {} if cache is None else {v: cache[v] for v in versions if v in cache}
        if wanted:
            with translated("reading policy versions"):
                bodies = await self._client.hmget(keys.versions, wanted)
            found.update(_decoded(keys.versions, wanted, bodies, self._verify))
        return found

    async def _follow(self, stream: str) -> AsyncIterator[Rollout]:
        """Each new rollout of ``stream``, starting with the current one (if any); never ends by itself."""
        keys = self._known[stream]
        backoff = Backoff(self._config.retry_base_s, self._config.retry_cap_s).schedule()
        after: str | None = None  # None: (re)start from the current state
        cache: dict[str, Policy] = {}
        while True:
            try:
                if after is None:
                    rollout = await self._rollout(keys)
                    after = rollout.entry_id
                    if rollout.entry_id != NO_ENTRY:
                        cache = dict(rollout.policies)
                        yield rollout
                    continue
                after, rollouts = await self._next(keys, after, cache)
            except Unavailable as exc:
                after = None
                await self._wait_to_retry(backoff, exc)
                continue
            backoff.reset()
            for rollout in rollouts:
                cache = dict(rollout.policies)
                yield rollout

    async def _next(self, keys: PolicyKeys, after: str, cache: dict[str, Policy]) -> tuple[str, list[Rollout]]:
        block_ms = int(self._config.watch_block_s * 1000)
        with translated("waiting for policy updates"):
            reply = await self._client.xread({keys.stream: after}, count=16, block=block_ms)
        entries = [entry_from_fields(entry_id, fields) for entry_id, fields in read_entries(reply)]
        if not entries:
            return after, []
        last = entries[-1]  # intermediate states are history; watchers only need the newest
        policies = await self._load(keys, last.state.versions, cache)
        return last.entry_id, [Rollout(last.entry_id, last.state, policies)]

    async def _wait_to_retry(self, backoff: BackoffSchedule, exc: Unavailable) -> None:
        delay = backoff.next_delay()
        log = logger.warning if backoff.attempts == 1 else logger.debug  # one warning per outage
        log("policy watch lost Redis, retrying in %.2f s: %s", delay, exc)
        await asyncio.sleep(delay)


def _decoded(
    key: str, versions: Sequence[str], bodies: Sequence[object], verify: PolicyVerifier | None = None
) -> dict[str, Policy]:
    """The versions that decode (and verify, with ``verify``); one that does not (written behind the store's
    back, or by a newer release with a mode this one does not know) is skipped with a logged reason, so it is
    never served and a publish can still replace it."""
    found = {}
    for version, body in zip(versions, bodies, strict=True):
        if not isinstance(body, bytes):
            continue
        try:
            policy = _decode(body)
            if verify is not None:
                verify(policy)
            found[version] = policy
        except InvalidPolicy as exc:
            logger.warning("policy %s of %s skipped: %s", version, key, exc)
    return found


def _decode(body: bytes) -> Policy:
    try:
        message = fleet_pb2.Policy.FromString(body)
    except DecodeError as exc:
        raise InvalidPolicy(f"a stored policy cannot be decoded: {exc!r}") from exc
    return Policy.from_pb(message)
