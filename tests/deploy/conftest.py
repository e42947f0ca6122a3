"""The deployment tier (``pytest -m deploy``): every artifact under deploy/ checked offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import OVERLAYS, REPO, DeployTools, documents, ensure_tools, render, run


@pytest.fixture(scope="session")
def deploy_tools() -> DeployTools:
    return ensure_tools()


@pytest.fixture(scope="session")
def rendered(deploy_tools: DeployTools) -> dict[str, str]:
    """Each overlay rendered by kustomize, by overlay name."""
    return {overlay: render(deploy_tools, overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def manifests(rendered: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    return {overlay: documents(text) for overlay, text in rendered.items()}


@pytest.fixture(scope="session")
def built_wheel(deploy_tools: DeployTools, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built as a release builds it (``python -m build --wheel``)."""
    out = tmp_path_factory.mktemp("dist")
    result = run([deploy_tools.bin("pyproject-build"), "--wheel", "--outdir", out, REPO], timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("confroute-*.whl")
    return wheel
