"""Every rendered overlay is valid Kubernetes (strict schemas) and passes checkov, every skip justified."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import OVERLAYS, DeployTools, run

pytestmark = pytest.mark.deploy

# Custom resources the Kubernetes schemas do not know; test_k8s_workloads checks what they reference.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
_SKIP = re.compile(r"^(CKV2?_[A-Z0-9]+_\d+)=(.+)$")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_validates_strictly_against_the_kubernetes_schemas(
    deploy_tools: DeployTools, rendered: dict[str, str], overlay: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(rendered[overlay])

    result = run([deploy_tools.bin("kubernetes-validate"), "--strict", "--quiet", path])

    assert result.returncode == 0, result.stdout + result.stderr
    unknown = [line for line in result.stdout.splitlines() if line.strip()
               and not any(f"kind {kind} with api version {api}" in line for api, kind in CRD_KINDS)]
    assert unknown == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_passes_on_the_rendered_overlay(
    deploy_tools: DeployTools, rendered: dict[str, str], overlay: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(rendered[overlay])

    report = _checkov(deploy_tools, ["-f", str(path), "--framework", "kubernetes"], tmp_path)

    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment", "").strip()) >= 20, skipped["check_id"]


def test_every_checkov_skip_in_the_manifests_says_why(manifests: dict[str, list[dict[str, Any]]]) -> None:
    skips = [(doc["metadata"]["name"], value) for docs in manifests.values() for doc in docs
             for key, value in doc["metadata"].get("annotations", {}).items() if key.startswith("checkov.io/skip")]

    assert skips, "the manifests skip no check: drop this test's expectations"
    for name, value in skips:
        match = _SKIP.match(value)
        assert match and len(match.group(2).split()) >= 8, f"{name}: {value!r}"


def test_checkov_passes_on_the_dockerfiles(deploy_tools: DeployTools, tmp_path: Path) -> None:
    from tests.deploy.tools import DEPLOY

    report = _checkov(deploy_tools, ["-d", str(DEPLOY), "--framework", "dockerfile"], tmp_path)

    assert [(c["check_id"], c["file_path"]) for c in report["results"]["failed_checks"]] == []
    assert report["summary"]["passed"] > 0


def _checkov(tools: DeployTools, args: list[str], workdir: Path) -> dict[str, Any]:
    result = run([tools.bin("checkov"), *args, "--skip-download", "--output", "json"], cwd=workdir)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    reports: list[dict[str, Any]] = report if isinstance(report, list) else [report]
    assert len(reports) == 1, [r.get("check_type") for r in reports]
    return reports[0]
