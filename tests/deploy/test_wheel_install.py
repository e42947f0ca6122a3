"""Devices install the built wheel, not a checkout: it installs with the edge extra into a clean venv and answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from confroute import __version__
from tests.deploy.tools import clean_env, run

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(1800)]  # a cold pip cache: minutes


@pytest.fixture(scope="module")
def clean_venv(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("device") / "venv"
    assert run([sys.executable, "-m", "venv", venv]).returncode == 0
    result = run([venv / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  f"{built_wheel}[edge]"], timeout=900, env=clean_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return venv


def test_the_wheel_holds_the_three_packages_and_no_tests(built_wheel: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(built_wheel).namelist()
    tops = {name.split("/")[0] for name in names if "/" in name and ".dist-info" not in name}

    assert tops == {"confroute", "edge_agent", "cloud_service"}
    assert "edge_agent/py.typed" in names


def test_the_installed_agent_reports_its_version(clean_venv: Path) -> None:
    result = run([clean_venv / "bin/edge-agent", "--version"], env=clean_env())

    assert (result.returncode, result.stdout.strip()) == (0, f"edge-agent {__version__}")


def test_the_installed_agent_answers_from_a_tiny_bundle(
    clean_venv: Path, tiny_bundles: dict[str, Path], tmp_path: Path
) -> None:
    result = run([clean_venv / "bin/edge-agent", "ask", "hello there", "--bundle", tiny_bundles["llama"],
                  "--max-tokens", "4", "--state-dir", tmp_path], timeout=300, cwd=tmp_path, env=clean_env())

    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads(result.stdout.strip().splitlines()[-1])
    assert (meta["side"], meta["model"]) == ("edge", "tiny-random-llama")


def test_the_device_environment_has_no_cloud_or_export_dependencies(clean_venv: Path) -> None:
    result = run([clean_venv / "bin/python", "-c",
                  "import importlib.util as u; print([m for m in ('redis', 'tritonclient', 'torch', 'onnx') "
                  "if u.find_spec(m)])"], env=clean_env())

    assert result.stdout.strip() == "[]"
