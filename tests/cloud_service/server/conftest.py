"""The cloud service for real: a grpc.aio server on a loopback port 0, on its own event-loop thread,
talking to a real tritonserver (echo and slow_echo models), with an in-memory outcome log and
policy store. Tests use the generated (synchronous) stubs, like any other client would.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc  # type: ignore[import-untyped]

from cloud_service.config import ServiceConfig
from cloud_service.inference import TritonServerConfig, TritonServerProcess
from cloud_service.metrics import create_metrics
from cloud_service.outcomes.labels import LateLabel
from cloud_service.ports import OutcomeLog, PolicyStore, StoreResult
from cloud_service.server.app import Dependencies, build_server
from cloud_service.server.runner import RunningService, start_service
from confroute.contract import OutcomeRecord, Policy
from confroute.errors import Unavailable
from confroute.v1 import escalation_pb2_grpc, fleet_pb2_grpc, outcomes_pb2_grpc
from tests.cloud_service.memory_stores import MemoryPolicyStore
from tests.harness import LoopThread, triton_python_or_skip

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[3]
MODELS = (
    ROOT / "cloud_service" / "model_repository" / "echo",
    ROOT / "tests" / "cloud_service" / "backends" / "model_repository" / "slow_echo",
)
WAIT_S = 10.0


class MemoryOutcomeLog:
    """An OutcomeLog (and LabelLog) in dicts, idempotent by query_id; ``unavailable`` makes store() and label()
    fail."""

    def __init__(self) -> None:
        self.stored: dict[str, OutcomeRecord] = {}
        self.recorded: list[OutcomeRecord] = []
        self.labels: dict[str, LateLabel] = {}
        self.unavailable = False

    def record(self, record: OutcomeRecord) -> None:
        self.recorded.append(record)

    async def store(self, records: Sequence[OutcomeRecord]) -> StoreResult:
        if self.unavailable:
            raise Unavailable("the outcome log is down")
        new = [r.query_id for r in records if r.query_id not in self.stored]
        duplicates = [r.query_id for r in records if r.query_id in self.stored]
        self.stored.update((r.query_id, r) for r in records)
        return StoreResult(stored=tuple(new), duplicates=tuple(duplicates))

    async def label(self, labels: Sequence[LateLabel]) -> StoreResult:
        """A LabelLog too: each query's first label is kept."""
        if self.unavailable:
            raise Unavailable("the outcome log is down")
        new = [item.record.query_id for item in labels if item.record.query_id not in self.labels]
        duplicates = [item.record.query_id for item in labels if item.record.query_id in self.labels]
        for item in labels:
            self.labels.setdefault(item.record.query_id, item)
        return StoreResult(stored=tuple(new), duplicates=tuple(duplicates))

    def stats(self) -> Any:
        return dataclasses.make_dataclass("Stats", ["buffered", "dropped"])(buffered=3, dropped=1)

    async def close(self) -> None:
        """Nothing to flush."""


@dataclasses.dataclass
class Service:
    """A running service and a client channel to it."""

    loop: LoopThread
    running: RunningService
    log: MemoryOutcomeLog
    store: MemoryPolicyStore
    channel: grpc.Channel

    @property
    def escalation(self) -> Any:
        return escalation_pb2_grpc.EscalationServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def outcomes(self) -> Any:
        return outcomes_pb2_grpc.OutcomesServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def fleet(self) -> Any:
        return fleet_pb2_grpc.FleetServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def health(self) -> Any:
        return health_pb2_grpc.HealthStub(self.channel)

    def publish(self, policy: Policy) -> None:
        self.loop.run(self.store.publish(policy))

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)


@pytest.fixture(scope="session")
def backend_python() -> Path:
    return triton_python_or_skip()


def start_triton(backend_python: Path, folder: Path) -> TritonServerProcess:
    """A tritonserver serving echo and slow_echo from a repository of links in ``folder``."""
    for model in MODELS:
        (folder / model.name).symlink_to(model, target_is_directory=True)
    process = TritonServerProcess(TritonServerConfig(folder, backend_python=backend_python))
    process.start()
    return process


@pytest.fixture(scope="session")
def triton(backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServerProcess]:
    process = start_triton(backend_python, tmp_path_factory.mktemp("models"))
    yield process
    process.stop()


@pytest.fixture
def own_triton(backend_python: Path, tmp_path: Path) -> Iterator[TritonServerProcess]:
    """A tritonserver of the test's own, which the test may stop."""
    process = start_triton(backend_python, tmp_path)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread("service-loop")
    yield thread
    thread.close()


ServiceFactory = Callable[..., Service]
StoresFactory = Callable[[ServiceConfig], AbstractAsyncContextManager[tuple[OutcomeLog, PolicyStore]]]


def memory_stores(log: MemoryOutcomeLog, store: MemoryPolicyStore) -> StoresFactory:
    """A stores factory, as ``cloud_service.stores.open_redis_stores`` is one, handing out these two."""

    @asynccontextmanager
    async def stores(config: ServiceConfig) -> AsyncIterator[tuple[OutcomeLog, PolicyStore]]:
        yield log, store

    return stores


@pytest.fixture
def stores_factory() -> StoresFactory:
    return memory_stores(MemoryOutcomeLog(), MemoryPolicyStore())


class FailingBackend:
    """A backend for the services that need no model: every call raises ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error or AssertionError("this test's service has no model")

    async def generate(self, request: Any, timeout_s: float) -> Any:
        raise self.error

    async def stream(self, request: Any, timeout_s: float) -> AsyncIterator[Any]:
        raise self.error
        yield  # an async generator, like a real backend's stream

    async def close(self) -> None:
        """Nothing to release."""


async def start_with_backend(config: ServiceConfig, backend: Any, stores: Any, stack: AsyncExitStack) -> RunningService:
    """What start_service does, with an injected backend that is always ready."""
    log, store = await stack.enter_async_context(stores(config))
    metrics = create_metrics()
    metrics.watch_outcome_log(log)

    async def ready() -> bool:
        return True

    server = build_server(config, Dependencies(backend, log, store, metrics))
    await server.start(ready, config.readiness_interval_s)
    stack.push_async_callback(server.stop, config.grace_s)
    return RunningService(server, metrics, None)


@pytest.fixture
def make_service(loop_thread: LoopThread, request: pytest.FixtureRequest) -> Iterator[ServiceFactory]:
    """Starts services with config overrides (default: the echo model, plain prompts, port 0).

    Without ``backend=`` the service talks to the session's tritonserver; with one, it needs none.
    """
    started: list[tuple[Service, AsyncExitStack]] = []

    def make(backend: Any = None, **overrides: Any) -> Service:
        values: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "prompt_format": "plain",
            "metrics_listen": "",
            "readiness_interval_s": 0.1,
            "grace_s": 0.5,
        }
        if backend is None and "triton_url" not in overrides:
            values["triton_url"] = request.getfixturevalue("triton").endpoints.grpc_url
        config = ServiceConfig(**(values | overrides))
        log, store, stack = MemoryOutcomeLog(), MemoryPolicyStore(), AsyncExitStack()
        stores = memory_stores(log, store)

        if backend is None:
            running = loop_thread.run(start_service(config, stores, stack))
        else:
            running = loop_thread.run(start_with_backend(config, backend, stores, stack))
        channel = grpc.insecure_channel(f"127.0.0.1:{running.server.port}")
        service = Service(loop_thread, running, log, store, channel)
        started.append((service, stack))
        return service

    yield make
    for service, stack in started:
        service.channel.close()
        loop_thread.run(stack.aclose())


@pytest.fixture
def service(make_service: ServiceFactory) -> Service:
    """A service on the session's tritonserver (echo model)."""
    return make_service()


@pytest.fixture
def bare_service(make_service: ServiceFactory) -> Service:
    """A service without a model, for what needs none (outcomes, policies)."""
    return make_service(backend=FailingBackend())


@pytest.fixture
def service_failing_with(make_service: ServiceFactory) -> Callable[[Exception], Service]:
    """A service whose backend raises the given error on every call."""
    return lambda error: make_service(backend=FailingBackend(error))
