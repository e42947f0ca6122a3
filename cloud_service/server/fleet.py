"""FleetService: the routing policy for a device's edge model build and cohort, once or as it changes.

Policies are keyed by the edge model's *build* (``edge_model.version``) and the cohort, as the
policy store keys them; while a canary runs, each device gets the version assigned to it (by its
``device_id``), and Watch pushes the canary only to the canary's devices. A change reaches thousands
of watchers at once, so each policy's response message is built once and shared (a small cache).
"""

from __future__ import annotations

import functools
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

    async def GetPolicy(  # noqa: N802 -- the name is the RPC's
        self, request: fleet_pb2.GetPolicyRequest, context: grpc.aio.ServicerContext
    ) -> fleet_pb2.GetPolicyResponse:
        """The current policy, or NOT_FOUND when none was published."""
        wanted = PolicyRequest.from_pb(request)
        policy = await self._store.current(wanted.edge_model.version, wanted.cohort, wanted.device_id)
        if policy is None:
            await _not_found(context, wanted)
        return fleet_pb2.GetPolicyResponse(policy=_policy_pb(policy))

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
                yield _watch_response(policy)


@functools.lru_cache(maxsize=256)
def _policy_pb(policy: Policy) -> fleet_pb2.Policy:
    """One message per policy, shared by every response that carries it (never mutated)."""
    return policy.to_pb()


@functools.lru_cache(maxsize=256)
def _watch_response(policy: Policy) -> fleet_pb2.WatchPolicyResponse:
    return fleet_pb2.WatchPolicyResponse(policy=_policy_pb(policy))


async def _not_found(context: grpc.aio.ServicerContext, wanted: PolicyRequest) -> NoReturn:
    model = wanted.edge_model
    await context.abort(
        grpc.StatusCode.NOT_FOUND, f"no policy for edge model {model.id} {model.version} in cohort {wanted.cohort!r}"
    )
    raise AssertionError("context.abort returned")  # pragma: no cover -- abort always raises
