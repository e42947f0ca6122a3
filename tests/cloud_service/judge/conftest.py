"""A real tritonserver serving the echo model and a fixed-verdict judge model (see the backends' conftest)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_service.inference import TritonServerConfig, TritonServerProcess, probe_backend_environment
from confroute.errors import Unavailable

ROOT = Path(__file__).resolve().parents[3]
MODELS = (
    ROOT / "cloud_service" / "model_repository" / "echo",
    Path(__file__).resolve().parent / "model_repository" / "verdict",
)


@pytest.fixture(scope="session")
def judge_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServerProcess]:
    configured = os.environ.get("CONFROUTE_TRITON_PYTHON")
    if not configured:
        pytest.skip("CONFROUTE_TRITON_PYTHON is not set (a venv with nvidia-pytriton==0.7.0 and numpy<2)")
    try:
        python = probe_backend_environment(Path(configured)).python
    except Unavailable as exc:
        pytest.skip(f"CONFROUTE_TRITON_PYTHON={configured} cannot run tritonserver: {exc}")
    repository = tmp_path_factory.mktemp("judge-models")
    for model in MODELS:
        (repository / model.name).symlink_to(model, target_is_directory=True)
    with TritonServerProcess(TritonServerConfig(repository, backend_python=python)) as process:
        yield process
