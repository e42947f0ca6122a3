"""An agent killed (SIGKILL) at any moment, with outcomes still queued, and restarted: every answer it
handed back has its outcome queued, and the uploader stores each in the cloud exactly once."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from edge_agent.outbox import GrpcOutcomeSink, OutcomeQueue, QueueConfig, Uploader
from tests.edge_agent.outbox.fake_cloud import FakeCloud, serving
from tests.edge_agent.outbox.test_kill9 import kill_after

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def cloud_port(cloud: FakeCloud) -> Iterator[int]:
    with serving(cloud) as port:
        yield port


def _child(bundle: Path, queue_file: Path) -> object:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    return subprocess.Popen([sys.executable, "-m", "tests.edge_agent.core.answering_agent", str(bundle),
                             str(queue_file), "100000"], cwd=root, stdout=subprocess.PIPE, text=True)


def test_a_killed_agent_loses_no_promised_outcome_and_uploads_each_once(
        tiny_bundle: Path, tmp_path: Path, cloud: FakeCloud, cloud_port: int) -> None:
    queue_file = tmp_path / "outbox.db"
    answered: list[str] = []
    for _ in range(2):
        answered += kill_after(_child(tiny_bundle, queue_file), random.randint(1, 40))  # type: ignore[arg-type]
    with OutcomeQueue(QueueConfig(queue_file)) as queue:
        assert set(answered) <= {entry.query_id for entry in queue.peek_batch(1_000_000)}
        with grpc.insecure_channel(f"127.0.0.1:{cloud_port}") as channel:
            Uploader(queue, GrpcOutcomeSink(channel, deadline_s=5.0)).run_once()
        assert queue.stats().queued == 0
    assert set(answered) <= set(cloud.stored)
    assert set(cloud.newly_stored.values()) == {1}
