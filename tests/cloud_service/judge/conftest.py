"""A real tritonserver serving the echo model and a fixed-verdict judge model (see the backends' conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_service.inference import TritonServerConfig, TritonServerProcess
from tests.harness import triton_python_or_skip

ROOT = Path(__file__).resolve().parents[3]
MODELS = (
    ROOT / "cloud_service" / "model_repository" / "echo",
    Path(__file__).resolve().parent / "model_repository" / "verdict",
)


@pytest.fixture(scope="session")
def judge_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServerProcess]:
    python = triton_python_or_skip()
    repository = tmp_path_factory.mktemp("judge-models")
    for model in MODELS:
        (repository / model.name).symlink_to(model, target_is_directory=True)
    with TritonServerProcess(TritonServerConfig(repository, backend_python=python)) as process:
        yield process
