"""Shell scripts pass shellcheck; systemd units pass ``systemd-analyze verify`` and a hardening threshold."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.tools import DEPLOY, REPO, DeployTools, run

pytestmark = pytest.mark.deploy

SCRIPTS = sorted([*DEPLOY.rglob("*.sh"), REPO / "scripts" / "setup_deploy_tools.sh",
                  *(REPO / "tests" / "deploy").rglob("*.sh")])
# systemd-analyze security's exposure (0 best, 10 worst). The Jetson unit keeps the GPU's device nodes.
UNITS = {DEPLOY / "pi" / "confroute-edge.service": 2.0, DEPLOY / "jetson" / "confroute-edge.service": 4.5}
_SYSTEM_UNITS = Path("/lib/systemd/system")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck_is_clean(deploy_tools: DeployTools, script: Path) -> None:
    result = run([deploy_tools.bin("shellcheck"), "--severity=info", script])

    assert result.returncode == 0, result.stdout


def unit_root(tmp_path: Path, unit: Path) -> Path:
    """A root holding the unit, the targets it names, and a stand-in for its ExecStart binary."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    for pattern in ("*.target", "*.slice", "*.socket"):
        for path in _SYSTEM_UNITS.glob(pattern):
            shutil.copy(path, root / "usr/lib/systemd/system" / path.name, follow_symlinks=True)
    shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    for line in unit.read_text().splitlines():
        if line.startswith("ExecStart="):
            binary = root / line.split("=", 1)[1].split()[0].lstrip("/")
            binary.parent.mkdir(parents=True, exist_ok=True)
            binary.write_text("#!/bin/sh\n")
            binary.chmod(0o755)
    return root


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_the_unit_verifies_without_a_warning(deploy_tools: DeployTools, unit: Path, tmp_path: Path) -> None:
    root = unit_root(tmp_path, unit)

    result = run([deploy_tools.systemd_analyze, "verify", f"--root={root}", f"/etc/systemd/system/{unit.name}"])

    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_the_unit_is_hardened(deploy_tools: DeployTools, unit: Path, tmp_path: Path) -> None:
    root = unit_root(tmp_path, unit)
    text = unit.read_text()

    result = run([deploy_tools.systemd_analyze, "security", "--offline=yes", f"--root={root}",
                  f"--threshold={int(UNITS[unit] * 10)}", "--no-pager", f"/etc/systemd/system/{unit.name}"])

    assert result.returncode == 0, result.stdout[-1500:]
    for setting in ("DynamicUser=yes", "StateDirectory=confroute-edge", "ProtectSystem=strict",
                    "NoNewPrivileges=yes", "StandardOutput=journal"):
        assert setting in text


BUNDLE_UPDATE = DEPLOY / "jetson" / "confroute-bundle-update.service"


def test_the_bundle_update_unit_and_its_timer_verify_and_are_hardened(
        deploy_tools: DeployTools, tmp_path: Path) -> None:
    root = unit_root(tmp_path, BUNDLE_UPDATE)
    timer = BUNDLE_UPDATE.with_suffix(".timer")
    shutil.copy(timer, root / "etc/systemd/system" / timer.name)
    units = [f"/etc/systemd/system/{BUNDLE_UPDATE.name}", f"/etc/systemd/system/{timer.name}"]

    verified = run([deploy_tools.systemd_analyze, "verify", f"--root={root}", *units])
    security = run([deploy_tools.systemd_analyze, "security", "--offline=yes", f"--root={root}", "--threshold=25",
                    "--no-pager", units[0]])

    assert verified.returncode == 0 and verified.stdout + verified.stderr == "", verified.stdout + verified.stderr
    assert security.returncode == 0, security.stdout[-1500:]
    text = BUNDLE_UPDATE.read_text()
    for setting in ("Type=oneshot", "edge-agent bundle update", "systemctl try-restart confroute-edge.service",
                    "ReadWritePaths=/opt/confroute", "StateDirectory=confroute-bundle", "UMask=0022"):
        assert setting in text
    assert "OnCalendar=daily" in timer.read_text() and "RandomizedDelaySec=" in timer.read_text()
