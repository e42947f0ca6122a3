"""kill -9 at any moment loses no record whose put() returned, and uploads nothing twice into the cloud."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from edge_agent.outbox import GrpcOutcomeSink, OutcomeQueue, QueueConfig, Uploader
from tests.edge_agent.outbox.fake_cloud import FakeCloud
from tests.factories import outcomes

ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 30.0
pytestmark = pytest.mark.timeout(120)


def child(module: str, *args: object) -> subprocess.Popen[str]:
    """``python -m tests.edge_agent.outbox.<module> args...`` from the repository root."""
    return subprocess.Popen(
        [sys.executable, "-m", f"tests.edge_agent.outbox.{module}", *map(str, args)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )


def kill_after(process: subprocess.Popen[str], lines: int) -> list[str]:
    """Reads ``lines`` lines, SIGKILLs the process, and returns every line it printed."""
    assert process.stdout is not None
    printed = [process.stdout.readline().strip() for _ in range(lines)]
    os.kill(process.pid, signal.SIGKILL)
    printed += process.stdout.read().split()  # lines already in the pipe when it died
    process.stdout.close()
    assert process.wait(WAIT_S) == -signal.SIGKILL
    return [line for line in printed if line]


def test_every_put_that_returned_survives_a_kill_9_at_a_random_moment(queue_file: Path) -> None:
    rng = random.Random()
    promised: list[str] = []
    for round_ in range(3):
        moment = rng.randint(1, 300)
        promised += kill_after(child("putter", queue_file, f"r{round_}", 100_000), moment)

        with OutcomeQueue(QueueConfig(queue_file)) as queue:
            queued = {entry.query_id for entry in queue.peek_batch(1_000_000)}
        assert set(promised) <= queued, f"killed after {moment} puts in round {round_}"
    with sqlite3.connect(queue_file) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()


def test_an_uploader_killed_between_the_clouds_store_and_its_ack_uploads_nothing_twice(
    queue_file: Path, cloud: FakeCloud, cloud_port: int
) -> None:
    with OutcomeQueue(QueueConfig(queue_file)) as queue:
        for record in outcomes(250):
            queue.put(record)

    assert kill_after(child("dying_uploader", queue_file, cloud_port), 1) == ["stored"]
    assert len(cloud.stored) == QueueConfig(queue_file).batch_size  # stored in the cloud, still queued here

    with OutcomeQueue(QueueConfig(queue_file)) as queue, grpc.insecure_channel(f"127.0.0.1:{cloud_port}") as channel:
        assert queue.stats().queued == 250
        report = Uploader(queue, GrpcOutcomeSink(channel, deadline_s=5.0)).run_once()
        assert queue.stats().queued == 0

    assert set(cloud.stored) == {f"q-{i}" for i in range(250)}
    assert set(cloud.newly_stored.values()) == {1}
    assert (report.duplicates, report.uploaded) == (200, 50)
