"""The parts of the fault suite's stack that live for the whole module: a tiny edge bundle and tritonserver
serving the echo model (the cloud model; its answers cost no CPU worth counting) and the ``faulty`` model
(the echo model's answers, slowed or failing when a test says so)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_service.inference import TritonServerConfig, TritonServerProcess
from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.tiny import tiny_source
from tests.faults.stack import ECHO, FAULTY_CONTROL, TritonFaults, add_faulty_model
from tests.harness import triton_python_or_skip


@pytest.fixture(scope="module")
def edge_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faults-bundle") / "tiny"
    export_bundle(tiny_source("llama"), folder, ExportOptions(), lambda _message: None)
    return folder


@pytest.fixture(scope="module")
def triton_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repository = tmp_path_factory.mktemp("faults-models")
    (repository / "echo").symlink_to(ECHO, target_is_directory=True)
    add_faulty_model(repository)
    return repository


@pytest.fixture(scope="module")
def triton(triton_repository: Path) -> Iterator[TritonServerProcess]:
    python = triton_python_or_skip()
    with TritonServerProcess(TritonServerConfig(triton_repository, backend_python=python)) as process:
        yield process


@pytest.fixture
def triton_faults(triton: TritonServerProcess, triton_repository: Path) -> Iterator[TritonFaults]:
    """The switch of the ``faulty`` model in the module's tritonserver; healed after the test."""
    faults = TritonFaults(triton_repository / FAULTY_CONTROL)
    faults.heal()
    try:
        yield faults
    finally:
        faults.heal()
