"""FleetService: the routing policy for a device's edge model build and cohort, once or as it changes.

Policies are keyed by the edge model's *build* (``edge_model.version``) and the cohort, as the
policy store keys them; while a canary runs, each device gets the version assigned to it (by its
``device_id``), and Watch pushes the canary only to the canary's devices. A change reaches thousands
of watchers at once, so each policy's Watch response is built once and shared (a small cache).

With authentication on, a device reads only its own cohort's policy as itself, so the canary arm it gets
is the one the store assigns to its enrolled id; an operator with ``policy:read`` reads any. A watch
ends with UNAUTHENTICATED once the credential it opened with is revoked or rotated out, and a device
holds at most ``max_device_watches`` watches on a replica (RESOURCE_EXHAUSTED beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import NoReturn, TypeVar

import grpc

from cloud_service.identity.access import require_policy_read
from cloud_service.identity.authenticator import Authenticator
from cloud_service.identity.context import current_caller, current_principal
from cloud_service.ops.devices import Sightings
from cloud_service.ports import PolicyStore
from cloud_service.server.limits import DeviceLimits, PerKeySlots
from cloud_service.server.streams import closing
from confroute.contract.policy import Policy, PolicyRequest
from confroute.errors import Unauthenticated
from confroute.v1 import fleet_pb2, fleet_pb2_grpc


class FleetServicer(fleet_pb2_grpc.FleetServiceServicer):  # type: ignore[misc]
    """Serves policies from the policy store."""

    def __init__(
        self, store: PolicyStore, authenticator: Authenticator | None = None, watches: PerKeySlots | None = None,
        sightings: Sightings | None = None,
    ) -> None:
        self._store = store
        self._sightings = sightings
        self._authenticator = authenticator
        self._watches = watches
        self._responses = _ResponseCache()

    async def GetPolicy(  # noqa: N802 -- the name is the RPC's
        self, request: fleet_pb2.GetPolicyRequest, context: grpc.aio.ServicerContext
    ) -> fleet_pb2.GetPolicyResponse:
        """The current policy, or NOT_FOUND when none was published."""
        wanted = PolicyRequest.from_pb(request)
        require_policy_read(current_principal(), wanted.device_id, wanted.cohort)
        self._note(wanted, "get", context)
        policy = await self._store.current(wanted.edge_model.version, wanted.cohort, wanted.device_id)
        if policy is None:
            await _not_found(context, wanted)
        return fleet_pb2.GetPolicyResponse(policy=policy.to_pb())

    async def WatchPolicy(  # noqa: N802
        self, request: fleet_pb2.WatchPolicyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[fleet_pb2.WatchPolicyResponse]:
        """The current policy unless the device holds it, then each one published later."""
        wanted = PolicyRequest.from_pb(request)
        require_policy_read(current_principal(), wanted.device_id, wanted.cohort)
        self._note(wanted, "watch", context)
        watch = self._store.watch(
            wanted.edge_model.version, wanted.cohort, wanted.known_policy_version, wanted.device_id
        )
        caller = current_caller()
        if self._authenticator is None or caller is None:
            async with closing(watch) as policies:
                async for policy in policies:
                    yield self._responses.get(policy)
            return
        slots = self._watches or DeviceLimits.unlimited().watches
        with slots.slot(caller.principal.principal_id), self._authenticator.watching(caller) as revoked:
            async with closing(watch) as policies:
                async for policy in _until(policies, revoked):
                    yield self._responses.get(policy)

    def _note(self, wanted: PolicyRequest, call: str, context: grpc.aio.ServicerContext) -> None:
        if self._sightings is not None:
            self._sightings.note(wanted.device_id, wanted.cohort, wanted.edge_model.version, call,
                                 policy_version=wanted.known_policy_version,
                                 metadata=context.invocation_metadata() or ())


class _ResponseCache:
    """One response message per policy object, shared by every watcher it goes to (never mutated).

    The store hands the same ``Policy`` object to all watchers of a change, so the cache is keyed by
    identity (hashing a policy costs more than the lookup should); each entry holds its policy, so an
    id cannot be reused while cached.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: dict[int, tuple[Policy, fleet_pb2.WatchPolicyResponse]] = {}

    def get(self, policy: Policy) -> fleet_pb2.WatchPolicyResponse:
        entry = self._entries.get(id(policy))
        if entry is not None and entry[0] is policy:
            return entry[1]
        response = fleet_pb2.WatchPolicyResponse(policy=policy.to_pb())
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[id(policy)] = (policy, response)
        return response


T = TypeVar("T")


async def _until(items: AsyncIterator[T], revoked: asyncio.Event) -> AsyncIterator[T]:
    """``items`` until ``revoked`` is set, then Unauthenticated (a policy change is rare: one race per item).

    The pending ``anext`` is always finished before this ends, so that ``items`` can be closed after it.
    """
    ended = asyncio.ensure_future(revoked.wait())
    following: asyncio.Future[T] | None = None
    try:
        while True:
            following = asyncio.ensure_future(anext(items))
            await asyncio.wait((following, ended), return_when=asyncio.FIRST_COMPLETED)
            if ended.done():
                raise Unauthenticated("the credential was revoked or rotated out")
            try:
                item = following.result()
            except StopAsyncIteration:
                return
            following = None
            yield item
    finally:
        ended.cancel()
        if following is not None and not following.done():
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await following


async def _not_found(context: grpc.aio.ServicerContext, wanted: PolicyRequest) -> NoReturn:
    model = wanted.edge_model
    await context.abort(
        grpc.StatusCode.NOT_FOUND, f"no policy for edge model {model.id} {model.version} in cohort {wanted.cohort!r}"
    )
    raise AssertionError("context.abort returned")  # pragma: no cover -- abort always raises
