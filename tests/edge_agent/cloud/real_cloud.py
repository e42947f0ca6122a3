"""The real cloud service servicers (escalation, fleet) on a loopback port, for the edge's tests only.

The gRPC server, its error interceptor and servicers are the production ones; the inference backend
echoes the question word by word and the policy store lives in memory, so no Triton or Redis is needed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, TypeVar

from cloud_service.config import ServiceConfig
from cloud_service.metrics import create_metrics
from cloud_service.ports import StoreResult
from cloud_service.server.app import CloudServer, Dependencies, build_server
from confroute.contract import EscalationRequest, EscalationResponse, OutcomeRecord, Policy, TokenDelta
from confroute.contract.answer import StreamEvent
from tests.cloud_service.memory_stores import MemoryPolicyStore
from tests.edge_agent.cloud.samples import answer

T = TypeVar("T")
WAIT_S = 10.0


class EchoBackend:
    """Answers with the last message's words, streamed one by one."""

    async def generate(self, request: EscalationRequest, timeout_s: float) -> EscalationResponse:
        return answer(request.messages[-1].content)

    async def stream(self, request: EscalationRequest, timeout_s: float) -> AsyncIterator[StreamEvent]:
        words = request.messages[-1].content.split()
        for word in words:
            yield TokenDelta(word + " ")
        yield answer(" ".join(words))

    async def close(self) -> None:
        """Nothing to release."""


class MemoryOutcomeLog:
    def __init__(self) -> None:
        self.recorded: list[OutcomeRecord] = []

    def record(self, record: OutcomeRecord) -> None:
        self.recorded.append(record)

    async def store(self, records: Sequence[OutcomeRecord]) -> StoreResult:
        return StoreResult(stored=tuple(r.query_id for r in records), duplicates=())

    async def close(self) -> None:
        """Nothing to flush."""


class RealCloud:
    """The cloud service's gRPC server on its own event-loop thread; ``close()`` stops everything."""

    def __init__(self, listen: str = "127.0.0.1:0") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="real-cloud", daemon=True)
        self._thread.start()
        self.log = MemoryOutcomeLog()
        self.store = self._run(self._new_store())
        config = ServiceConfig(listen=listen, metrics_listen="", readiness_interval_s=0.1, grace_s=0.2)
        deps = Dependencies(EchoBackend(), self.log, self.store, create_metrics())
        self.server: CloudServer = self._run(self._start(config, deps))
        self.port = self.server.port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(self, policy: Policy) -> None:
        self._run(self.store.publish(policy))

    def close(self) -> None:
        self._run(self.server.stop(0.2))
        self._run(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT_S)
        self.loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(WAIT_S)

    @staticmethod
    async def _new_store() -> MemoryPolicyStore:
        return MemoryPolicyStore()  # made on the loop, where its events are awaited

    @staticmethod
    async def _start(config: ServiceConfig, deps: Dependencies) -> CloudServer:
        server = build_server(config, deps)

        async def ready() -> bool:
            return True

        await server.start(ready, config.readiness_interval_s)
        return server
