"""PolicyAdminService: the operators' policy commands through the service, each guarded by a scope.

Reads (``GetRollout``, ``GetVersion``, ``GetHistory``) need ``policy:read`` (roles read-only and
policy-admin); changes (``SetPolicy``, ``Promote``, ``Rollback``, ``Pin``, ``Unpin``) need
``policy:write`` (role policy-admin). Devices are refused every call (PERMISSION_DENIED), and so is every
caller of a service that authenticates nobody. Each change is recorded in the rollout's history with the
operator's id beside its reason. The work is :class:`~cloud_service.operator.admin.StoreAdmin` on the
service's policy store, which signs what it issues with the service's ``policy_signing_key``.
"""

from __future__ import annotations

import grpc

from cloud_service.identity.access import require_operator
from cloud_service.identity.context import current_principal
from cloud_service.identity.record import POLICY_READ, POLICY_WRITE
from cloud_service.operator import wire
from cloud_service.operator.admin import DEFAULT_HISTORY, PolicyAdmin
from confroute.contract.policy import Policy
from confroute.v1 import operator_pb2, operator_pb2_grpc

MAX_HISTORY = 1000


class PolicyAdminServicer(operator_pb2_grpc.PolicyAdminServiceServicer):  # type: ignore[misc]
    """Authorises each call by the caller's scopes, then runs it on ``admin``."""

    def __init__(self, admin: PolicyAdmin) -> None:
        self._admin = admin

    async def GetRollout(  # noqa: N802 -- the name is the RPC's
        self, request: operator_pb2.GetRolloutRequest, context: grpc.aio.ServicerContext
    ) -> operator_pb2.GetRolloutResponse:
        require_operator(current_principal(), POLICY_READ)
        return wire.rollout_to_pb(await self._admin.rollout(*wire.key_from_pb(request.key)))

    async def GetVersion(  # noqa: N802
        self, request: operator_pb2.GetVersionRequest, context: grpc.aio.ServicerContext
    ) -> operator_pb2.GetVersionResponse:
        require_operator(current_principal(), POLICY_READ)
        version = wire.text_from_pb(request.version, "version", wire.MAX_NAME)
        policy = await self._admin.version(*wire.key_from_pb(request.key), version)
        return operator_pb2.GetVersionResponse(policy=policy.to_pb() if policy is not None else None)

    async def GetHistory(  # noqa: N802
        self, request: operator_pb2.GetHistoryRequest, context: grpc.aio.ServicerContext
    ) -> operator_pb2.GetHistoryResponse:
        require_operator(current_principal(), POLICY_READ)
        count = min(request.count or DEFAULT_HISTORY, MAX_HISTORY)
        return wire.history_to_pb(await self._admin.history(*wire.key_from_pb(request.key), count))

    async def SetPolicy(  # noqa: N802
        self, request: operator_pb2.SetPolicyRequest, context: grpc.aio.ServicerContext
    ) -> operator_pb2.SetPolicyResponse:
        reason = _reason(request.reason)
        policy = Policy.from_pb(request.policy)
        wire.key_from_pb(wire.key_to_pb(policy.edge_model.version, policy.cohort))  # the same bounds as a key
        issued = await self._admin.set_policy(policy, reason)
        return operator_pb2.SetPolicyResponse(policy=issued.to_pb())

    async def Promote(  # noqa: N802
        self, request: operator_pb2.PromoteRequest, context: grpc.aio.ServicerContext
    ) -> operator_pb2.PromoteResponse:
        reason = _reason(request.reason)
        return operator_pb2.PromoteResponse(control=await self._admin.promote(*wire.key_from_pb(request.key), reason))

    async def Rollback(  # noqa: N802
        self, request: operator_pb2.RollbackRequest, context: grpc.aio.ServicerContext
    ) -> operator_pb2.RollbackResponse:
        reason = _reason(request.reason)
        return operator_pb2.RollbackResponse(control=await self._admin.rollback(*wire.key_from_pb(request.key), reason))

    async def Pin(  # noqa: N802
        self, request: operator_pb2.PinRequest, context: grpc.aio.ServicerContext
    ) -> operator_pb2.PinResponse:
        reason = _reason(request.reason)
        version = wire.text_from_pb(request.version, "version", wire.MAX_NAME)
        return operator_pb2.PinResponse(control=await self._admin.pin(*wire.key_from_pb(request.key), version, reason))

    async def Unpin(  # noqa: N802
        self, request: operator_pb2.UnpinRequest, context: grpc.aio.ServicerContext
    ) -> operator_pb2.UnpinResponse:
        reason = _reason(request.reason)
        return operator_pb2.UnpinResponse(control=await self._admin.unpin(*wire.key_from_pb(request.key), reason))


def _reason(text: str) -> str:
    """Authorises a change (``policy:write``) and returns the history's reason, naming the operator."""
    principal = require_operator(current_principal(), POLICY_WRITE)
    reason = wire.text_from_pb(text, "reason", wire.MAX_REASON) or "operator"
    return f"{reason} (by {principal.principal_id})"
