"""FleetService: the routing policy for a device's edge model build and cohort, once or as it changes.

Policies are keyed by the edge model's *build* (``edge_model.version``) and the cohort, as the
policy store keys them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NoReturn

import grpc

from cloud_service.ports import PolicyStore
from cloud_service.server.streams import closing
from confroute.contract.policy import PolicyRequest
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
        policy = await self._store.current(wanted.edge_model.version, wanted.cohort)
        if policy is None:
            await _not_found(context, wanted)
        return fleet_pb2.GetPolicyResponse(policy=policy.to_pb())

    async def WatchPolicy(  # noqa: N802
        self, request: fleet_pb2.WatchPolicyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[fleet_pb2.WatchPolicyResponse]:
        """The current policy unless the device holds it, then each one published later."""
        wanted = PolicyRequest.from_pb(request)
        watch = self._store.watch(wanted.edge_model.version, wanted.cohort, wanted.known_policy_version)
        async with closing(watch) as policies:
            async for policy in policies:
                yield fleet_pb2.WatchPolicyResponse(policy=policy.to_pb())


async def _not_found(context: grpc.aio.ServicerContext, wanted: PolicyRequest) -> NoReturn:
    model = wanted.edge_model
    await context.abort(
        grpc.StatusCode.NOT_FOUND, f"no policy for edge model {model.id} {model.version} in cohort {wanted.cohort!r}"
    )
    raise AssertionError("context.abort returned")  # pragma: no cover -- abort always raises
