"""FleetService: the routing policy for a device's edge model build and cohort, once or as it changes.

Policies are keyed by the edge model's *build* (``edge_model.version``) and the cohort, as the
policy store keys them; while a canary runs, each device gets the version assigned to it (by its
``device_id``), and Watch pushes the canary only to the canary's devices. A change reaches thousands
of watchers at once, so each policy's Watch response is built once and shared (a small cache).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NoReturn

import grpc

from cloud_service.ports import PolicyStore
from cloud_service.server.streams import closing
from confroute.contract.policy import Policy, PolicyRequest
from confroute.v1 import fleet_pb2, fleet_pb2_grpc


class FleetServicer(fleet_pb2_grpc.FleetServiceServicer):  # type: ignore[misc]
    """Serves policies from the policy store."""

    def __init__(self, store: PolicyStore) -> None:
        self._store = store
        self._responses = _ResponseCache()

    async def GetPolicy(  # noqa: N802 -- the name is the RPC's
        self, request: fleet_pb2.GetPolicyRequest, context: grpc.aio.ServicerContext
    ) -> fleet_pb2.GetPolicyResponse:
        """The current policy, or NOT_FOUND when none was published."""
        wanted = PolicyRequest.from_pb(request)
        policy = await self._store.current(wanted.edge_model.version, wanted.cohort, wanted.device_id)
        if policy is None:
            await _not_found(context, wanted)
        return fleet_pb2.GetPolicyResponse(policy=policy.to_pb())

    async def WatchPolicy(  # noqa: N802
        self, request: fleet_pb2.WatchPolicyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[fleet_pb2.WatchPolicyResponse]:
        """The current policy unless the device holds it, then each one published later."""
        wanted = PolicyRequest.from_pb(request)
        watch = self._store.watch(
            wanted.edge_model.version, wanted.cohort, wanted.known_policy_version, wanted.device_id
        )
        async with closing(watch) as policies:
            async for policy in policies:
                yield self._responses.get(policy)


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


async def _not_found(context: grpc.aio.ServicerContext, wanted: PolicyRequest) -> NoReturn:
    model = wanted.edge_model
    await context.abort(
        grpc.StatusCode.NOT_FOUND, f"no policy for edge model {model.id} {model.version} in cohort {wanted.cohort!r}"
    )
    raise AssertionError("context.abort returned")  # pragma: no cover -- abort always raises
