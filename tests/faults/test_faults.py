"""One fault at a time under steady traffic through the real stack: the promise holds.

Two device processes ask a question every 50 ms (each escalated to the cloud: the policy's post threshold
is 1.0) and upload their outcomes in the background, while the suite kills a dependency and brings it
back. Then the devices stop asking and drain their outboxes, and the suite checks:

- every query was answered within its deadline (the cloud's budget plus the local model's; the local
  answer counts), and every process exited by itself (nothing hung);
- every outcome a device had acknowledged is in the cloud's log exactly once, and nothing else is
  (entries in the stream counted against the devices' acknowledgements);
- a policy published after the recovery reaches every device (the devices watch policies);
- the time from the restart to the first acknowledgement and to the first cloud answer (recovery), and
  from publishing that policy to every device routing with it.

Set ``CONFROUTE_FAULTS_REPORT=path`` to append each fault's measurements to a JSON-lines file
(``docs/faults.md`` holds a run's).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from cloud_service.inference import TritonServerConfig, TritonServerProcess
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from tests.cloud_service.redis_server import RedisServer, free_port
from tests.faults.device import CLOUD_DEADLINE_S, always_escalate
from tests.faults.proxy import TcpProxy
from tests.faults.stack import COHORT, ECHO, Device, Service, device_entries, start_device
from tests.harness import triton_python_or_skip

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(240)]

LOCAL_BUDGET_S = 2.5  # the tiny local model's answer on a busy 2-core machine, with room to spare
QUERY_DEADLINE_S = CLOUD_DEADLINE_S + LOCAL_BUDGET_S
STEADY_S = 4.0  # traffic before the fault, and again after the recovery
OUTAGE_S = 1.5  # how long the killed process stays down
CONVERGE_S = 15.0  # a policy published after the recovery reaches every device within this
PARTITION_S = 5.0  # longer than an escalation's budget and than an upload round's retries
DEVICES = 2


@dataclass
class Stack:
    redis: RedisServer
    service: Service
    bundle: Path
    folder: Path
    proxy: TcpProxy | None = None  # between the devices and the service, when a test partitions them
    triton: TritonServerProcess | None = None  # the test's own, when it kills it
    replica: Service | None = None  # a second service on the same Redis and Triton

    @property
    def target(self) -> str:
        if self.replica is not None:  # both addresses: gRPC's pick_first moves to the next when one dies
            return f"ipv4:{self.service.target},{self.replica.target}"
        return self.proxy.target if self.proxy is not None else self.service.target


@dataclass(frozen=True)
class FaultReport:
    """What one fault did to the traffic, measured."""

    fault: str
    outage_s: float  # from the kill until the restarted process listens again
    answered: int
    answered_by_cloud: int
    answered_locally_during_outage: int
    max_latency_s: float
    acknowledged: int
    log_entries: int
    restart_to_first_ack_s: float
    restart_to_first_cloud_answer_s: float
    policy_converged_s: float = float("nan")  # from publishing a policy after the recovery to every device using it


@contextlib.contextmanager
def running_stack(triton_url: str, edge_bundle: Path, folder: Path) -> Iterator[Stack]:
    with RedisServer() as redis_server:
        service = Service(folder, redis_server.url, triton_url)
        service.start()
        try:
            yield Stack(redis_server, service, edge_bundle, folder)
        finally:
            assert service.stop() == 0, "the service did not shut down cleanly"


@pytest.fixture
def stack(triton: TritonServerProcess, edge_bundle: Path, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(triton.endpoints.grpc_url, edge_bundle, tmp_path) as running:
        yield running


@pytest.fixture
def partitionable_stack(stack: Stack) -> Iterator[Stack]:
    stack.proxy = TcpProxy(stack.service.target)
    try:
        yield stack
    finally:
        stack.proxy.close()


@pytest.fixture
def two_replica_stack(stack: Stack, triton: TritonServerProcess) -> Iterator[Stack]:
    (stack.folder / "replica").mkdir()
    stack.replica = Service(stack.folder / "replica", stack.redis.url, triton.endpoints.grpc_url)
    stack.replica.start()
    try:
        yield stack
    finally:
        assert stack.replica.stop() == 0, "the surviving replica did not shut down cleanly"


@pytest.fixture
def own_triton_stack(edge_bundle: Path, tmp_path: Path) -> Iterator[Stack]:
    """A stack whose tritonserver (on fixed ports, so that it comes back where the service expects it) the
    test may kill."""
    repository = tmp_path / "models"
    repository.mkdir()
    (repository / "echo").symlink_to(ECHO, target_is_directory=True)
    config = TritonServerConfig(repository, backend_python=triton_python_or_skip(), grpc_port=free_port(),
                                http_port=free_port(), metrics_port=free_port())
    with TritonServerProcess(config) as triton, running_stack(triton.endpoints.grpc_url, edge_bundle,
                                                               tmp_path) as running:
        running.triton = triton
        yield running


def kill_redis(stack: Stack) -> float:
    stack.redis.stop(signal.SIGKILL)
    time.sleep(OUTAGE_S)
    stack.redis.start()  # from its AOF
    return time.time()


def kill_service(stack: Stack) -> float:
    assert stack.service.stop(signal.SIGKILL) == -signal.SIGKILL
    time.sleep(OUTAGE_S)
    stack.service.start()
    return time.time()


def partition(stack: Stack) -> float:
    assert stack.proxy is not None
    stack.proxy.partition()
    time.sleep(PARTITION_S)
    stack.proxy.heal()
    return time.time()


def kill_triton(stack: Stack) -> float:
    assert stack.triton is not None and stack.triton.pid is not None
    os.kill(stack.triton.pid, signal.SIGKILL)
    stack.triton.stop()
    time.sleep(OUTAGE_S)
    stack.triton.start()
    return time.time()


def kill_one_replica(stack: Stack) -> float:
    """SIGKILLs the replica the devices use first; the other keeps serving (nothing is restarted)."""
    assert stack.service.stop(signal.SIGKILL) == -signal.SIGKILL
    return time.time()


def under_traffic(stack: Stack, name: str, fault: Callable[[Stack], float]) -> FaultReport:
    devices = [start_device(stack.bundle, stack.folder / f"device-{i}", stack.target, f"device-{i}")
               for i in range(DEVICES)]
    try:
        time.sleep(STEADY_S)
        injected = time.time()
        restarted = fault(stack)
        converged_s = publish_and_converge(stack, devices)
        time.sleep(STEADY_S)
    finally:
        codes = [device.stop() for device in devices]
    assert codes == [0] * DEVICES, [device.folder for device in devices]
    report = dataclasses.replace(check_the_promise(stack, name, devices, injected, restarted),
                                 policy_converged_s=converged_s)
    write_down(report)
    return report


def publish_and_converge(stack: Stack, devices: list[Device]) -> float:
    """Publishes a new policy after the recovery and returns how long until every device routed with it."""
    policy = always_escalate(devices[0].edge_model(), COHORT, "faults-2")

    async def publish() -> None:
        store = RedisPolicyStore(PolicyStoreConfig(url=stack.redis.url))
        try:
            await store.publish(policy)
        finally:
            await store.close()

    published = time.time()
    asyncio.run(publish())
    deadline = time.monotonic() + CONVERGE_S
    while not all(routes_with(device, "faults-2") for device in devices):
        assert time.monotonic() < deadline, f"the devices did not all run faults-2 within {CONVERGE_S} s"
        time.sleep(0.05)
    return round(time.time() - published, 3)


def routes_with(device: Device, version: str) -> bool:
    return any(answer["policy"] == version for answer in device.answers()[-5:])


def check_the_promise(stack: Stack, name: str, devices: list[Device], injected: float, restarted: float
                      ) -> FaultReport:
    answers = [answer for device in devices for answer in device.answers()]
    acked: dict[str, float] = {}
    for device in devices:
        assert device.summary() == {**device.summary(), "left_in_outbox": 0}, f"{device.device_id} did not drain"
        assert device.summary()["asked"] == len(device.answers())
        acked.update(device.acked())
    version = str(devices[0].summary()["edge_model_version"])
    logged = device_entries(stack.redis, version)

    late = [a for a in answers if float(str(a["latency_s"])) > QUERY_DEADLINE_S]
    assert not late, f"{len(late)} answers past {QUERY_DEADLINE_S} s: {late[:3]}"
    assert {str(a["qid"]) for a in answers} <= set(acked), "an answered query's outcome was never acknowledged"
    duplicated = {qid: n for qid, n in logged.items() if n != 1}
    assert not duplicated, f"logged more than once: {list(duplicated.items())[:5]}"
    assert set(logged) == set(acked), (f"acknowledged but not logged: {len(set(acked) - set(logged))}, "
                                       f"logged but not acknowledged: {len(set(logged) - set(acked))}")
    return measured(name, answers, acked, logged, injected, restarted)


def measured(name: str, answers: list[dict[str, object]], acked: dict[str, float], logged: dict[str, int],
             injected: float, restarted: float) -> FaultReport:
    after = [float(str(a["t"])) for a in answers if a["side"] == "cloud" and float(str(a["t"])) > restarted]
    acks_after = [at for at in acked.values() if at > restarted]
    during = [a for a in answers if injected <= float(str(a["t"])) <= restarted and a["side"] == "edge"]
    report = FaultReport(
        fault=name, outage_s=round(restarted - injected, 3), answered=len(answers),
        answered_by_cloud=sum(a["side"] == "cloud" for a in answers),
        answered_locally_during_outage=len(during),
        max_latency_s=round(max(float(str(a["latency_s"])) for a in answers), 3),
        acknowledged=len(acked), log_entries=sum(logged.values()),
        restart_to_first_ack_s=round(min(acks_after) - restarted, 3) if acks_after else float("nan"),
        restart_to_first_cloud_answer_s=round(min(after) - restarted, 3) if after else float("nan"),
    )
    return report


def write_down(report: FaultReport) -> None:
    destination = os.environ.get("CONFROUTE_FAULTS_REPORT")
    if destination:
        with open(destination, "a") as out:
            out.write(json.dumps(asdict(report)) + "\n")


def test_a_sigkill_of_redis_loses_no_acknowledged_outcome(stack: Stack) -> None:
    report = under_traffic(stack, "Redis SIGKILL, restarted from its AOF", kill_redis)

    assert report.acknowledged == report.answered
    assert report.restart_to_first_ack_s < 10.0


def test_a_sigkill_of_the_service_loses_nothing_and_devices_answer_locally_meanwhile(stack: Stack) -> None:
    report = under_traffic(stack, "cloud service SIGKILL, restarted", kill_service)

    assert report.acknowledged == report.answered
    assert report.answered_locally_during_outage > 0
    assert report.restart_to_first_cloud_answer_s < 10.0


def test_a_partition_longer_than_the_retry_horizon_is_healed_without_loss(partitionable_stack: Stack) -> None:
    report = under_traffic(partitionable_stack, "network partition (devices | cloud), healed", partition)

    assert report.acknowledged == report.answered
    assert report.answered_locally_during_outage > 0
    assert report.restart_to_first_ack_s < 10.0


def test_a_sigkill_of_tritonserver_is_answered_locally_until_it_is_back(own_triton_stack: Stack) -> None:
    report = under_traffic(own_triton_stack, "tritonserver SIGKILL, restarted", kill_triton)

    assert report.acknowledged == report.answered
    assert report.answered_locally_during_outage > 0


def test_with_two_replicas_a_sigkill_of_one_is_absorbed_by_the_other(two_replica_stack: Stack) -> None:
    report = under_traffic(two_replica_stack, "one of two service replicas SIGKILLed (not restarted)",
                           kill_one_replica)

    assert report.acknowledged == report.answered
    assert report.restart_to_first_cloud_answer_s < 5.0
