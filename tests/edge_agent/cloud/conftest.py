"""Fixtures for the edge's cloud client: the real cloud servicers, scripted faults, and certificates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge_agent.cloud.certs import Certs, make_certs
from tests.edge_agent.cloud.clock import FakeClock
from tests.edge_agent.cloud.real_cloud import RealCloud


@pytest.fixture
def real_cloud() -> Iterator[RealCloud]:
    cloud = RealCloud()
    yield cloud
    cloud.close()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    made = make_certs(tmp_path_factory.mktemp("certs"))
    if made is None:
        pytest.skip("openssl is not installed")
    return made


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "policy.json"
