"""deploy/monitoring/grafana-dashboard.json parses, and every panel queries series the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cloud_service.metrics import create_metrics
from cloud_service.ops.worker_metrics import WorkerMetrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "monitoring" / "grafana-dashboard.json"
SERIES = re.compile(r"\b((?:confroute|process)_[a-z_]+)\b")


def exported() -> set[str]:
    """Every series name the service's and the workers' registries expose (families and samples)."""
    service = create_metrics()
    service.watch_outcome_log(SimpleNamespace(stats=SimpleNamespace(buffered=0, dropped=0, written=0, duplicates=0,
                                                                    write_errors=0)))
    names: set[str] = set()
    for registry in (service.registry, WorkerMetrics("worker").registry):
        for family in registry.collect():
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
            names.update(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_sum", "_count"))
    return names


def expressions() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_parses_with_unique_panels_that_each_query_something() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]

    assert dashboard["uid"] and len(ids) == len(set(ids)) >= 15
    assert all(panel["targets"] for panel in dashboard["panels"])


def test_every_panel_query_names_a_series_the_code_exports() -> None:
    known = exported()
    for expr in expressions():
        named = set(SERIES.findall(expr))
        assert named, f"no series in {expr}"
        assert named <= known, f"{expr}: not exported: {sorted(named - known)}"


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; run scripts/setup_monitoring_tools.sh)")
    rules = [{"record": f"dashboard:panel_{i}", "expr": expr.replace("$__rate_interval", "5m").replace("$job", ".*")}
             for i, expr in enumerate(expressions())]
    path = tmp_path / "panels.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))

    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stdout + done.stderr
