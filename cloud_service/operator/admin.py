"""What an operator does to the rollout of one (edge model version, cohort), as one interface.

:class:`PolicyAdmin` is implemented twice: :class:`StoreAdmin` runs the transitions of
:mod:`cloud_service.policies.operations` on a policy store (inside the service, and in the CLI's direct
Redis path kept for bootstrap), and :class:`cloud_service.operator.client.RemoteAdmin` asks the service's
``PolicyAdminService``. The CLI commands are written once against the interface.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cloud_service.policies import operations
from cloud_service.policies.state import HistoryEntry, Rollout
from confroute.contract.policy import Policy
from confroute.errors import Unavailable

DEFAULT_HISTORY = 20


class PolicyReader(Protocol):
    """The reads: a key's rollout, one stored version, the history (role read-only)."""

    async def rollout(self, edge_model_version: str, cohort: str) -> Rollout: ...

    async def version(self, edge_model_version: str, cohort: str, version: str) -> Policy | None: ...

    async def history(self, edge_model_version: str, cohort: str, count: int = DEFAULT_HISTORY
                      ) -> list[HistoryEntry]: ...


class PolicyAdmin(PolicyReader, Protocol):
    """The reads and the changes (role policy-admin); each change returns the control version after it."""

    async def set_policy(self, policy: Policy, reason: str) -> Policy: ...

    async def promote(self, edge_model_version: str, cohort: str, reason: str) -> str: ...

    async def rollback(self, edge_model_version: str, cohort: str, reason: str) -> str: ...

    async def pin(self, edge_model_version: str, cohort: str, version: str, reason: str) -> str: ...

    async def unpin(self, edge_model_version: str, cohort: str, reason: str) -> str: ...


@runtime_checkable
class RolloutStore(operations.RolloutStore, Protocol):
    """A policy store that keeps rollouts (``RedisPolicyStore``); checked at run time by the server."""


class StoreAdmin:
    """:class:`PolicyAdmin` on a policy store."""

    def __init__(self, store: operations.RolloutStore) -> None:
        self._store = store

    async def rollout(self, edge_model_version: str, cohort: str) -> Rollout:
        return await self._store.rollout(edge_model_version, cohort)

    async def version(self, edge_model_version: str, cohort: str, version: str) -> Policy | None:
        return await self._store.version(edge_model_version, cohort, version)

    async def history(self, edge_model_version: str, cohort: str, count: int = DEFAULT_HISTORY
                      ) -> list[HistoryEntry]:
        return await self._store.history(edge_model_version, cohort, count)

    async def set_policy(self, policy: Policy, reason: str) -> Policy:
        """Publishes ``policy`` as its key's control; the policy as issued (stamped, signed)."""
        await operations.publish(self._store, policy, reason)
        rollout = await self._store.rollout(policy.edge_model.version, policy.cohort)
        issued = rollout.policy_for("")
        if issued is None:  # pragma: no cover -- publish either committed a control or raised
            raise Unavailable("the published policy could not be read back")
        return issued

    async def promote(self, edge_model_version: str, cohort: str, reason: str) -> str:
        return await operations.promote(self._store, edge_model_version, cohort, reason)

    async def rollback(self, edge_model_version: str, cohort: str, reason: str) -> str:
        return await operations.rollback(self._store, edge_model_version, cohort, reason)

    async def pin(self, edge_model_version: str, cohort: str, version: str, reason: str) -> str:
        return await operations.pin(self._store, edge_model_version, cohort, version, reason)

    async def unpin(self, edge_model_version: str, cohort: str, reason: str) -> str:
        await operations.unpin(self._store, edge_model_version, cohort, reason)
        return (await self._store.rollout(edge_model_version, cohort)).state.control
