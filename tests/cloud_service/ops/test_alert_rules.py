"""deploy/monitoring/alerts.yml: promtool checks and unit-tests it, and every series it names is exported."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from cloud_service.ops.metric_table import rows

MONITORING = Path(__file__).resolve().parents[3] / "deploy" / "monitoring"
RULES = MONITORING / "alerts.yml"
SETUP = "scripts/setup_monitoring_tools.sh"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(f"promtool is not installed (Debian package prometheus; run {SETUP})")
    return path


def run_promtool(*arguments: str) -> str:
    done = subprocess.run([promtool(), *arguments], cwd=MONITORING, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_accepts_the_rules() -> None:
    assert "SUCCESS" in run_promtool("check", "rules", RULES.name)


def test_each_alert_fires_on_the_series_that_should_fire_it() -> None:
    assert "SUCCESS" in run_promtool("test", "rules", "alerts_test.yml")


def exported_series() -> set[str]:
    names = set()
    for row in rows():
        names.add(row.name)
        if row.kind == "histogram":
            names.update(f"{row.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


def test_every_series_a_rule_names_is_exported_by_the_code() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    expressions = [rule["expr"] for group in groups for rule in group["rules"]]
    named = {name for expr in expressions for name in re.findall(r"\bconfroute_[a-z_]+", expr)}

    assert named, "no confroute series found in the rules"
    assert named <= exported_series(), f"not exported: {sorted(named - exported_series())}"


def test_every_alert_is_unit_tested() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "alerts_test.yml").read_text()))

    assert alerts == tested
