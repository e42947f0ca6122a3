"""One fault at a time under steady traffic through the real stack: the promise holds.

Two device processes ask a question every 50 ms (each escalated to the cloud) and upload their outcomes
in the background, while the suite kills a dependency and brings it back, partitions the devices from the
cloud, slows or fails the cloud model, fills a device's outbox to its bound or its disk, kills a device amid
policy updates, or runs the devices on clocks hours wrong; :mod:`tests.faults.traffic` runs the traffic and
checks the promise (every query answered within its deadline, every acknowledged outcome logged exactly
once, the policies converge). ``docs/faults.md`` shows a run's figures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_service.inference import TritonServerConfig, TritonServerProcess
from confroute.routing import BUILTIN_VERSION
from edge_agent.cloud.policy_file import load_policy
from tests.cloud_service.redis_server import free_port
from tests.faults.device import Options
from tests.faults.proxy import TcpProxy
from tests.faults.stack import ECHO, EXIT_TIMEOUT_S, Service, TritonFaults, metric, shown, start_device
from tests.faults.traffic import OUTAGE_S, Stack, publish, running_stack, under_traffic
from tests.harness import triton_python_or_skip

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(240)]

PARTITION_S = 5.0  # longer than an escalation's budget and than an upload round's retries
TRITON_FAULT_S = 4.0  # how long the cloud model stays slow or failing
TRITON_DELAY_S = 3.0  # past the devices' 1.5 s escalation budget
OUTBOX_BOUND = 15  # records; a device answers ~10 a second while the cloud refuses it
DISK_MB = 16  # the devices' size-limited "disk" (tmpfs)
DISK_FULL_S = 4.0
BURST = 20  # policies published back to back; a device is SIGKILLed halfway
SKEW_S = 3 * 3600.0  # device-0's clock runs this far ahead, device-1's this far behind
SKEWCLOCK = Path(__file__).with_name("skewclock.c")  # a preloadable wall clock set wrong


@pytest.fixture
def stack(triton: TritonServerProcess, edge_bundle: Path, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(triton.endpoints.grpc_url, edge_bundle, tmp_path) as running:
        yield running


@pytest.fixture
def faulty_triton_stack(triton: TritonServerProcess, edge_bundle: Path, tmp_path: Path) -> Iterator[Stack]:
    """A stack whose service asks the ``faulty`` model (``triton_faults`` slows or fails it)."""
    with running_stack(triton.endpoints.grpc_url, edge_bundle, tmp_path, model="faulty") as running:
        yield running


@pytest.fixture
def partitionable_stack(stack: Stack) -> Iterator[Stack]:
    stack.proxy = TcpProxy(stack.service.target)
    try:
        yield stack
    finally:
        stack.proxy.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A size-limited folder the test can fill: a tmpfs of ``DISK_MB`` mounted for the test (root only)."""
    if os.geteuid() != 0:
        pytest.skip("the disk-full fault mounts a size-limited tmpfs, which needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Writes a file that takes every free byte of ``disk``; returns it."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(descriptor, b"\0" * size)
    finally:
        os.close(descriptor)
    return filler


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


def test_a_cloud_model_slower_than_the_deadlines_is_answered_locally(faulty_triton_stack: Stack,
                                                                    triton_faults: TritonFaults) -> None:
    def slow_triton(stack: Stack) -> float:
        triton_faults.slow(TRITON_DELAY_S)
        time.sleep(TRITON_FAULT_S)
        triton_faults.heal()
        return time.time()

    report = under_traffic(faulty_triton_stack, f"Triton answers {TRITON_DELAY_S:.0f} s late (past every deadline)",
                           slow_triton)

    assert report.acknowledged == report.answered
    assert report.answered_locally_during_outage > 0
    assert report.restart_to_first_cloud_answer_s < 10.0
    samples = faulty_triton_stack.service.metrics()  # the devices gave up waiting: their calls were cancelled
    assert metric(samples, "confroute_escalations_total", status="CANCELLED") > 0, shown(samples)
    assert metric(samples, "confroute_outcome_decisions_total", decision="escalation_unavailable") > 0, shown(samples)


def test_a_cloud_model_answering_errors_is_answered_locally(faulty_triton_stack: Stack,
                                                            triton_faults: TritonFaults) -> None:
    def failing_triton(stack: Stack) -> float:
        triton_faults.fail("injected by the fault suite")
        time.sleep(TRITON_FAULT_S)
        triton_faults.heal()
        return time.time()

    report = under_traffic(faulty_triton_stack, "Triton answers every request with an error", failing_triton)

    assert report.acknowledged == report.answered
    assert report.answered_locally_during_outage > 0
    assert report.restart_to_first_cloud_answer_s < 10.0
    samples = faulty_triton_stack.service.metrics()
    assert metric(samples, "confroute_triton_errors_total") > 0, shown(samples)
    assert metric(samples, "confroute_outcome_decisions_total", decision="escalation_unavailable") > 0, shown(samples)


def test_an_outbox_filled_to_its_bound_drops_the_oldest_counted_and_loses_nothing_acknowledged(
        partitionable_stack: Stack) -> None:
    def refused(stack: Stack) -> float:  # the cloud refuses connections: escalations fail fast, uploads wait
        assert stack.proxy is not None
        stack.proxy.partition(stall=False)
        time.sleep(PARTITION_S)
        stack.proxy.heal()
        return time.time()

    report = under_traffic(partitionable_stack, f"outbox filled to its bound ({OUTBOX_BOUND} records) while the "
                           "cloud refused connections", refused, lambda _: Options(max_records=OUTBOX_BOUND).to_env())

    assert report.lost > 0, report  # the devices answered more than their outboxes hold: the oldest went
    assert report.log_entries + report.lost == report.answered
    assert report.answered_locally_during_outage > report.evicted
    samples = partitionable_stack.service.metrics()  # the cloud saw only the survivors, each once
    assert metric(samples, "confroute_outcome_writes_total", result="stored", source="upload") == report.log_entries


def test_a_full_device_disk_costs_outcome_records_counted_never_an_answer(stack: Stack, small_disk: Path) -> None:
    def disk_full(stack: Stack) -> float:
        filler = fill(small_disk)
        time.sleep(DISK_FULL_S)
        filler.unlink()
        return time.time()

    report = under_traffic(stack, f"device disk full ({DISK_MB} MB tmpfs holding the outbox and the saved policy)",
                           disk_full, lambda i: Options(data_dir=str(small_disk / f"device-{i}")).to_env())

    assert report.acknowledged == report.log_entries
    assert report.log_entries + report.lost == report.answered
    assert report.lost <= report.unrecorded
    for i in range(len(stack.devices)):  # the policy published after the recovery was saved
        assert load_policy(small_disk / f"device-{i}" / "policy.json").policy_version == "faults-2"


def test_a_device_killed_during_policy_updates_restarts_on_its_saved_policy_and_outbox(stack: Stack) -> None:
    killed_at: list[int] = []  # how many answers the device had written when it was killed

    def kill_a_device_mid_burst(stack: Stack) -> float:
        victim = stack.devices[0]
        for n in range(BURST):
            publish(stack, stack.devices, f"burst-{n}")
            if n == BURST // 2:
                victim.process.send_signal(signal.SIGKILL)
                assert victim.process.wait(EXIT_TIMEOUT_S) == -signal.SIGKILL
                killed_at.append(len(victim.answers()))
        stack.devices[0] = start_device(stack.bundle, victim.folder, stack.target, victim.device_id)
        stack.devices[0].wait_for_traffic(after=killed_at[0])
        return time.time()

    report = under_traffic(stack, "a device SIGKILLed amid policy updates, restarted", kill_a_device_mid_burst)

    assert report.acknowledged == report.answered  # what the killed process answered was in its outbox
    first_after_restart = stack.devices[0].answers()[killed_at[0]]
    assert first_after_restart["policy"] not in ("", BUILTIN_VERSION), first_after_restart  # its saved policy


@pytest.fixture
def skew_library(tmp_path: Path) -> Path:
    """``skewclock.c`` built into a preloadable library (skips where there is no C compiler)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("the clock-skew fault builds tests/faults/skewclock.c, and no C compiler (cc) is installed")
    library = tmp_path / "skewclock.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(SKEWCLOCK), "-ldl"], check=True)
    return library


def test_device_clocks_skewed_by_hours_break_neither_policies_nor_outcomes(stack: Stack, skew_library: Path) -> None:
    def skewed_clock(i: int) -> dict[str, str]:  # device-0 ahead, device-1 behind
        skew = SKEW_S if i % 2 == 0 else -SKEW_S
        return {"LD_PRELOAD": str(skew_library), "CONFROUTE_CLOCK_SKEW_S": str(skew),
                **Options(clock_skew_s=skew).to_env()}

    def no_injection(stack: Stack) -> float:  # the clocks are wrong from the start, and stay wrong
        return time.time()

    report = under_traffic(stack, f"device clocks {SKEW_S / 3600:.0f} h ahead and {SKEW_S / 3600:.0f} h behind",
                           no_injection, skewed_clock)

    assert report.acknowledged == report.answered
    assert report.answered_by_cloud == report.answered
