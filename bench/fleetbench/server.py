"""The fleet server under test, as its own process: the production ``build_server`` (same options,
interceptor and FleetServicer) on the Redis policy store; escalations and uploads are not exercised.

    python -m bench.fleetbench.server --redis-url URL [--max-pending N]

Prints ``port <n>`` once serving, then serves until SIGTERM. The garbage collector and the event loop
(uvloop when installed) are those of ``cloud-service serve`` (``ServiceConfig.gc_threshold``, ``event_loop``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
from collections.abc import AsyncIterator, Sequence

from cloud_service import event_loop
from cloud_service.config import ServiceConfig
from cloud_service.metrics import create_metrics
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.ports import StoreResult
from cloud_service.server.app import Dependencies, build_server
from confroute.contract import EscalationRequest, EscalationResponse, OutcomeRecord
from confroute.contract.answer import StreamEvent
from confroute.errors import Unavailable


class NoBackend:
    """Escalations are not part of this benchmark."""

    async def generate(self, request: EscalationRequest, timeout_s: float) -> EscalationResponse:
        raise Unavailable("no backend in the fleet benchmark")

    async def stream(self, request: EscalationRequest, timeout_s: float) -> AsyncIterator[StreamEvent]:
        raise Unavailable("no backend in the fleet benchmark")
        yield  # pragma: no cover

    async def close(self) -> None:
        """Nothing to release."""


class NoOutcomeLog:
    def record(self, record: OutcomeRecord) -> None:
        """Dropped."""

    async def store(self, records: Sequence[OutcomeRecord]) -> StoreResult:
        return StoreResult(stored=(), duplicates=())

    async def close(self) -> None:
        """Nothing to flush."""


async def _ready() -> bool:
    return True


async def serve(redis_url: str, max_pending: int) -> None:
    config = ServiceConfig(listen="127.0.0.1:0", redis_url=redis_url, metrics_listen="",
                           max_pending_requests=max_pending)
    store = RedisPolicyStore(PolicyStoreConfig(url=redis_url))
    server = build_server(config, Dependencies(NoBackend(), NoOutcomeLog(), store, create_metrics()))
    await server.start(_ready, 60.0)
    print(f"port {server.port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0.5)
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--max-pending", type=int, default=ServiceConfig.max_pending_requests)
    parser.add_argument("--gc-threshold", type=int, default=ServiceConfig.gc_threshold,
                        help="as cloud-service serve: gc.set_threshold(N) (0: Python's default)")
    args = parser.parse_args()
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold)
    event_loop.run(serve(args.redis_url, args.max_pending))  # uvloop, as cloud-service serve


if __name__ == "__main__":
    main()
