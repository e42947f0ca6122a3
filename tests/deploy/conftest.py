"""The deployment tier (``pytest -m deploy``): every artifact under deploy/ checked offline."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.tools import OVERLAYS, DeployTools, documents, ensure_tools, render


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
