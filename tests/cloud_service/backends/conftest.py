"""A real tritonserver on loopback ports serving the echo model and a slow echo model.

The models' environment (nvidia-pytriton, numpy<2) is ``CONFROUTE_TRITON_PYTHON``; without it the
tests that need the server are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_service.inference import TritonServerConfig, TritonServerProcess
from tests.harness import triton_python_or_skip

ROOT = Path(__file__).resolve().parents[3]
MODELS = (
    ROOT / "cloud_service" / "model_repository" / "echo",
    Path(__file__).resolve().parent / "model_repository" / "slow_echo",
)


def model_repository(folder: Path) -> Path:
    """A repository in ``folder`` linking the echo and slow_echo models."""
    for model in MODELS:
        (folder / model.name).symlink_to(model, target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def backend_python() -> Path:
    return triton_python_or_skip()


@pytest.fixture(scope="session")
def triton(backend_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServerProcess]:
    repository = model_repository(tmp_path_factory.mktemp("models"))
    with TritonServerProcess(TritonServerConfig(repository, backend_python=backend_python)) as process:
        yield process
