"""An in-memory PolicyStore for tests on both sides (the cloud's servicers, the edge's watcher)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from confroute.contract import Policy


class MemoryPolicyStore:
    """A PolicyStore in a dict; watchers wake on one asyncio.Event per publication."""

    def __init__(self) -> None:
        self.policies: dict[tuple[str, str], Policy] = {}
        self._published = asyncio.Event()

    async def current(self, edge_model_version: str, cohort: str, device_id: str = "") -> Policy | None:
        return self.policies.get((edge_model_version, cohort))

    async def publish(self, policy: Policy) -> None:
        self.policies[(policy.edge_model.version, policy.cohort)] = policy
        published, self._published = self._published, asyncio.Event()
        published.set()

    async def watch(
        self, edge_model_version: str, cohort: str, known_version: str, device_id: str = ""
    ) -> AsyncIterator[Policy]:
        last = known_version
        while True:
            published = self._published
            policy = self.policies.get((edge_model_version, cohort))
            if policy is not None and policy.policy_version != last:
                last = policy.policy_version
                yield policy
            await published.wait()
