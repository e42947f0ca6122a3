"""Every Dockerfile under deploy/: hadolint clean, bases pinned to a version, the final stage unprivileged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.tools import DEPLOY, DeployTools, run

pytestmark = pytest.mark.deploy

DOCKERFILES = sorted(DEPLOY.rglob("*Dockerfile"))
_FROM = re.compile(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE | re.MULTILINE)
_USER = re.compile(r"^USER\s+(\S+)", re.MULTILINE)


def test_there_are_dockerfiles_to_check() -> None:
    assert {p.name for p in DOCKERFILES} >= {"cloud-service.Dockerfile", "triton-bundle.Dockerfile", "Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_hadolint_is_clean(deploy_tools: DeployTools, dockerfile: Path) -> None:
    result = run([deploy_tools.bin("hadolint"), "--failure-threshold", "info", dockerfile])

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_images_are_multi_stage_pinned_and_end_unprivileged(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    stages = _FROM.findall(text)
    names = {alias for _, alias in stages if alias}

    assert len(stages) >= 2, "multi-stage: the build tools stay out of the final image"
    for image, _ in stages:
        if image in names or image.startswith("$"):
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert "@sha256:" in image or (tag and tag != "latest" and re.search(r"\d", tag)), image
    final_stage = text[text.rfind("\nFROM "):]
    users = _USER.findall(final_stage)
    assert users and users[-1].split(":")[0] not in ("root", "0")
