"""Fixtures of the outbox tests: a queue in a real SQLite file, a fake cloud on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from edge_agent.outbox import GrpcOutcomeSink, OutcomeQueue, QueueConfig
from tests.edge_agent.outbox.fake_cloud import FakeCloud, serving


@pytest.fixture
def queue_file(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite"


@pytest.fixture
def queue(queue_file: Path) -> Iterator[OutcomeQueue]:
    with OutcomeQueue(QueueConfig(queue_file, batch_size=10)) as opened:
        yield opened


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def cloud_port(cloud: FakeCloud) -> Iterator[int]:
    with serving(cloud) as port:
        yield port


@pytest.fixture
def sink(cloud_port: int) -> Iterator[GrpcOutcomeSink]:
    with grpc.insecure_channel(f"127.0.0.1:{cloud_port}") as channel:
        yield GrpcOutcomeSink(channel, deadline_s=5.0)
