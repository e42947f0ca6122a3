"""Steady traffic through the fault suite's stack, one fault injected in the middle, and the promise checked.

Two device processes ask a question every 50 ms (each escalated to the cloud: the policy's post threshold
is 1.0) and upload their outcomes in the background, while a fault is injected and healed. Then the devices
stop asking and drain their outboxes, and :func:`check_the_promise` checks:

- every query was answered within its deadline (the cloud's budget plus the local model's; the local
  answer counts), and every process exited by itself (nothing hung);
- every outcome a device had acknowledged is in the cloud's log exactly once, and nothing else is
  (entries in the stream counted against the devices' acknowledgements); an answered query whose outcome
  was never acknowledged must be one the device counted as dropped (evicted from a full outbox, or not
  stored on a full disk) - never acknowledged, so never promised; and an outcome logged without its
  acknowledgement reaching the device must be one it evicted;
- a policy published after the recovery reaches every device (the devices watch policies);
- the time from the recovery to the first acknowledgement and to the first cloud answer, and from
  publishing that policy to every device routing with it.

Set ``CONFROUTE_FAULTS_REPORT=path`` to append each fault's measurements to a JSON-lines file
(``docs/faults.md`` holds a run's).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cloud_service.inference import TritonServerProcess
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from tests.cloud_service.redis_server import RedisServer
from tests.faults.device import CLOUD_DEADLINE_S, always_escalate
from tests.faults.proxy import TcpProxy
from tests.faults.stack import COHORT, Device, Service, device_entries, start_device

LOCAL_BUDGET_S = 2.5  # the tiny local model's answer on a busy 2-core machine, with room to spare
QUERY_DEADLINE_S = CLOUD_DEADLINE_S + LOCAL_BUDGET_S
STEADY_S = 4.0  # traffic before the fault, and again after the recovery
OUTAGE_S = 1.5  # how long the killed process stays down
CONVERGE_S = 15.0  # a policy published after the recovery reaches every device within this
DEVICES = 2
REDIS_FSYNC = "always"

DeviceEnv = Callable[[int], dict[str, str]]  # device index -> what its environment adds


@dataclass
class Stack:
    redis: RedisServer
    service: Service
    bundle: Path
    folder: Path
    proxy: TcpProxy | None = None  # between the devices and the service, when a test partitions them
    triton: TritonServerProcess | None = None  # the test's own, when it kills it
    replica: Service | None = None  # a second service on the same Redis and Triton
    devices: list[Device] = dataclasses.field(default_factory=list)  # while traffic runs

    @property
    def target(self) -> str:
        if self.replica is not None:  # both addresses: gRPC's pick_first moves to the next when one dies
            return f"ipv4:{self.service.target},{self.replica.target}"
        return self.proxy.target if self.proxy is not None else self.service.target


@dataclass(frozen=True)
class FaultReport:
    """What one fault did to the traffic, measured."""

    fault: str
    outage_s: float  # from the injection until the recovery (restart, heal)
    answered: int
    answered_by_cloud: int
    answered_locally_during_outage: int
    max_latency_s: float
    acknowledged: int
    log_entries: int
    restart_to_first_ack_s: float
    restart_to_first_cloud_answer_s: float
    lost: int = 0  # answered queries whose outcome is not in the log (each dropped and counted below)
    evicted: int = 0  # outcomes the devices' full outboxes dropped (the oldest), counted
    unrecorded: int = 0  # outcomes the devices could not store (a full disk), counted
    policy_converged_s: float = float("nan")  # from publishing a policy after the recovery to every device using it


@contextlib.contextmanager
def running_stack(triton_url: str, edge_bundle: Path, folder: Path, model: str = "echo") -> Iterator[Stack]:
    # appendfsync always: on a Redis without WAITAOF (7.0, as in CI) the only policy under which an
    # acknowledged outcome survives a Redis SIGKILL whatever the disk does (docs/faults.md).
    with RedisServer(appendfsync=REDIS_FSYNC) as redis_server:
        service = Service(folder, redis_server.url, triton_url, model)
        service.start()
        try:
            yield Stack(redis_server, service, edge_bundle, folder)
        finally:
            assert service.stop() == 0, "the service did not shut down cleanly"


def under_traffic(stack: Stack, name: str, fault: Callable[[Stack], float],
                  device_env: DeviceEnv | None = None) -> FaultReport:
    """Runs the devices, injects ``fault`` (which returns when it recovered, wall time) and checks the promise."""
    stack.devices = [start_device(stack.bundle, stack.folder / f"device-{i}", stack.target, f"device-{i}",
                                  device_env(i) if device_env else None)
                     for i in range(DEVICES)]
    try:
        for device in stack.devices:
            device.wait_for_traffic()
        time.sleep(STEADY_S)
        injected = time.time()
        restarted = fault(stack)
        converged_s = publish_and_converge(stack, stack.devices)
        time.sleep(STEADY_S)
    finally:
        codes = [device.stop() for device in stack.devices]
    assert codes == [0] * DEVICES, [device.folder for device in stack.devices]
    report = dataclasses.replace(check_the_promise(stack, name, stack.devices, injected, restarted),
                                 policy_converged_s=converged_s)
    write_down(report)
    return report


def publish(stack: Stack, devices: list[Device], version: str) -> None:
    """Publishes an always-escalate policy ``version`` for the devices' edge model, issued now by the cloud."""
    policy = always_escalate(devices[0].edge_model(), COHORT, version)

    async def run() -> None:
        store = RedisPolicyStore(PolicyStoreConfig(url=stack.redis.url))
        try:
            await store.publish(policy)
        finally:
            await store.close()

    asyncio.run(run())


def publish_and_converge(stack: Stack, devices: list[Device]) -> float:
    """Publishes a new policy after the recovery and returns how long until every device routed with it."""
    published = time.time()
    publish(stack, devices, "faults-2")
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
    dropped = {"evicted": 0, "unrecorded": 0}
    for device in devices:
        summary = device.summary()
        assert summary["left_in_outbox"] == 0, f"{device.device_id} did not drain: {summary}"
        assert summary["asked"] == len(device.answers())
        assert summary["dead_lettered"] == 0, f"the cloud refused outcomes of {device.device_id}: {summary}"
        for way in dropped:
            dropped[way] += int(str(summary[way]))
        acked.update(device.acked())
    version = str(devices[0].summary()["edge_model_version"])
    logged = device_entries(stack.redis, version)

    late = [a for a in answers if float(str(a["latency_s"])) > QUERY_DEADLINE_S]
    assert not late, f"{len(late)} answers past {QUERY_DEADLINE_S} s: {late[:3]}"
    # A record evicted while in an upload batch in flight may still be stored and acknowledged: the devices'
    # counts of dropped records bound the answered queries whose outcome never reached the cloud.
    unacknowledged = {str(a["qid"]) for a in answers} - set(acked)
    assert len(unacknowledged) <= sum(dropped.values()), (
        f"{len(unacknowledged)} answered queries were never acknowledged; the devices counted {dropped} dropped")
    duplicated = {qid: n for qid, n in logged.items() if n != 1}
    assert not duplicated, f"logged more than once: {list(duplicated.items())[:5]}"
    assert set(acked) <= set(logged), f"acknowledged but not logged: {len(set(acked) - set(logged))}"
    # Logged but never acknowledged: stored by the cloud, its acknowledgement lost on the way, and evicted by
    # the device before the retry that would have been acknowledged as a duplicate. Only eviction allows it.
    unconfirmed = set(logged) - set(acked)
    assert unconfirmed <= {str(a["qid"]) for a in answers}, "logged outcomes that no device answered"
    assert len(unconfirmed) <= dropped["evicted"], f"logged but not acknowledged: {len(unconfirmed)}"
    lost = {str(a["qid"]) for a in answers} - set(logged)
    return dataclasses.replace(measured(name, answers, acked, logged, injected, restarted), lost=len(lost),
                               evicted=dropped["evicted"], unrecorded=dropped["unrecorded"])


def measured(name: str, answers: list[dict[str, object]], acked: dict[str, float], logged: dict[str, int],
             injected: float, restarted: float) -> FaultReport:
    after = [float(str(a["t"])) for a in answers if a["side"] == "cloud" and float(str(a["t"])) > restarted]
    acks_after = [at for at in acked.values() if at > restarted]
    during = [a for a in answers if injected <= float(str(a["t"])) <= restarted and a["side"] == "edge"]
    return FaultReport(
        fault=name, outage_s=round(restarted - injected, 3), answered=len(answers),
        answered_by_cloud=sum(a["side"] == "cloud" for a in answers),
        answered_locally_during_outage=len(during),
        max_latency_s=round(max(float(str(a["latency_s"])) for a in answers), 3),
        acknowledged=len(acked), log_entries=sum(logged.values()),
        restart_to_first_ack_s=round(min(acks_after) - restarted, 3) if acks_after else float("nan"),
        restart_to_first_cloud_answer_s=round(min(after) - restarted, 3) if after else float("nan"),
    )


def write_down(report: FaultReport) -> None:
    destination = os.environ.get("CONFROUTE_FAULTS_REPORT")
    if destination:
        with open(destination, "a") as out:
            out.write(json.dumps(asdict(report)) + "\n")
