"""The dashboard in a real headless Chromium against a running service fed synthetic traffic: every panel
shows the number the status API returns, and a screenshot is kept (``build/test-artifacts/dashboard.png``,
or under ``$CONFROUTE_TEST_ARTIFACTS``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.cloud_service.ops.service import (
    HISTORY,
    RolloutStore,
    labelled_traffic,
    live_policy,
    monitored_service,
    synthetic_traffic,
)
from tests.factories import COHORT, EDGE

ROOT = Path(__file__).resolve().parents[3]
SETUP = "scripts/setup_monitoring_tools.sh --browser"
LIVE_FIELDS = {"service.uptime_s"}  # moves between the page's read and the test's
pytestmark = pytest.mark.timeout(120)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip(f"chromium is not installed (Debian package chromium; run {SETUP})")
    return path


def headless(url: str, profile: Path, *arguments: str) -> str:
    """Chromium loads ``url``, runs its scripts for up to 5 s of virtual time, and does ``arguments``."""
    done = subprocess.run(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-proxy-server", "--no-first-run",
         f"--user-data-dir={profile}", "--virtual-time-budget=5000", *arguments, url],
        capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Panels(HTMLParser):
    """The text of every ``data-field`` element, the cells of every table row by its kind (``data-row``; the
    fleet's rows are ``partition``) and the attributes of every plotted point by its kind (``data-point``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = defaultdict(list)
        self.points: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.loaded = False
        self._field: str | None = None
        self._row: list[str] | None = None
        self._in_cell = False

    @property
    def rows(self) -> list[list[str]]:
        return self.tables["partition"]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "body" and found.get("data-loaded") == "true":
            self.loaded = True
        if "data-field" in found:
            self._field = found["data-field"]
            self.fields[self._field] = ""
        if tag == "tr" and ("data-partition" in found or "data-row" in found):
            self._row = []
            self.tables[found.get("data-row", "partition")].append(self._row)
        if "data-point" in found:
            self.points[found["data-point"]].append(found)
        self._in_cell = self._row is not None and tag == "td"
        if self._in_cell and self._row is not None:
            self._row.append("")  # a cell may hold no text

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        self._field = None
        self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._field is not None:
            self.fields[self._field] += data
        if self._in_cell and self._row is not None:
            self._row[-1] += data


def shown(value: Any) -> str:
    """How the page writes a value (JavaScript's String())."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def lookup(document: dict[str, Any], path: str) -> Any:
    node: Any = document
    for key in path.split("."):
        node = node.get(key, 0) if isinstance(node, dict) else 0
    return node


def status_of(base: str) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{base}/api/status", timeout=5) as response:
        return dict(json.loads(response.read()))


def artifacts() -> Path:
    folder = Path(os.environ.get("CONFROUTE_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_dashboard_shows_the_numbers_of_the_status_api(tmp_path: Path) -> None:
    store = RolloutStore()
    store.policies[(EDGE.version, COHORT)] = live_policy()
    with monitored_service(store=store, recalibrations=HISTORY) as service:
        synthetic_traffic(service, ok=6, failed=2)
        service.refresh()  # the trend's first point: beta's window holds the 4 synthetic uploads
        labelled_traffic(service)
        service.refresh()
        page = f"{service.http}/dashboard#token=unused-when-authentication-is-off"
        dom = headless(page, tmp_path / "profile-dom", "--dump-dom")
        screenshot = tmp_path / "dashboard.png"
        headless(page, tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1400,1700")
        status = status_of(service.http)
    shutil.copy(screenshot, artifacts() / "dashboard.png")

    panels = Panels()
    panels.feed(dom)
    assert panels.loaded, "the page never rendered a status"
    assert len(panels.fields) >= 20
    for field, text in panels.fields.items():
        if field not in LIVE_FIELDS:
            assert text == shown(lookup(status, field)), field
    expected_rows = [[shown(p[key]) for key in ("edge_model_version", "cohort", "uploaded", "escalated",
                                                "escalation_rate", "policy_version")]
                     + [shown(p["thresholds"]["post"] if p["thresholds"] else None)]
                     for p in status["fleet"]["partitions"]]
    assert [row[:-1] for row in panels.rows] == expected_rows
    assert [row[-1] for row in panels.rows] == ["p-next (10%)", "–"]  # beta's canary; nothing in gamma
    assert panels.fields["service.escalations.OK"] == "6"
    assert panels.fields["devices.devices"] == "4"
    assert screenshot.stat().st_size > 10_000
    assert_loop_panels(panels, status)


def table(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[list[str]]:
    return [[shown(row.get(key)) for key in keys] for row in rows]


def assert_loop_panels(panels: Panels, status: dict[str, Any]) -> None:
    """The fleet's versions, the canaries, the windows, both plots and the history: the status's numbers."""
    devices, loop = status["devices"], status["loop"]
    assert panels.tables["policy-version"] == table(devices["by_policy_version"],
                                                    ("edge_model_version", "cohort", "policy_version", "devices"))
    assert panels.tables["probe-version"] == table(devices["by_probe_version"],
                                                   ("edge_model_version", "cohort", "probe_version", "devices"))
    assert ["2026.01", "beta", "probe-7", "1"] in panels.tables["probe-version"]
    rollouts = [dict(p["rollout"], edge_model_version=p["edge_model_version"], cohort=p["cohort"])
                for p in status["fleet"]["partitions"] if p["rollout"]]
    assert panels.tables["canary"] == table(rollouts, ("edge_model_version", "cohort", "control", "canary",
                                                       "canary_share", "pinned", "backpressure_shift"))
    assert panels.tables["window"] == table(loop["windows"], (
        "edge_model_version", "cohort", "policy_version", "outcomes", "labelled", "escalation_rate",
        "target_escalation_rate", "ece", "auroc", "risk", "risk_bound"))
    plotted = next(w for w in loop["windows"] if w["reliability"])
    bins = [b for b in plotted["reliability"] if b["count"]]
    assert [(p["data-confidence"], p["data-accuracy"], p["data-count"]) for p in panels.points["reliability"]] == \
        [(shown(b["confidence"]), shown(b["accuracy"]), shown(b["count"])) for b in bins]
    assert [(p["data-rate"], p["data-accuracy"]) for p in panels.points["quality"]] == \
        [(shown(c["escalation_rate"]), shown(c["edge_accuracy"])) for c in plotted["curve"]]
    (policy,) = panels.points["policy"]
    point = plotted["operating_point"]
    assert (policy["data-rate"], policy["data-accuracy"]) == (shown(point["escalation_rate"]),
                                                             shown(point["edge_accuracy"]))
    history = [dict(h, target="rate 0.3", labelled=None) for h in loop["history"]]
    assert panels.tables["history"] == table(history, ("at", "edge_model_version", "cohort", "status", "version",
                                                       "reason", "target", "labelled"))
    assert len(panels.points["reliability"]) >= 5 and len(panels.tables["window"]) == 2
    assert_trend_panel(panels, loop)


def assert_trend_panel(panels: Panels, loop: dict[str, Any]) -> None:
    """Escalation rate against target over time: a row and a sparkline per partition, the status's points."""
    trend = loop["trend"]
    last = [dict(entry["points"][-1], edge_model_version=entry["edge_model_version"], cohort=entry["cohort"],
                 passes=len(entry["points"])) for entry in trend]
    assert [row[:-1] for row in panels.tables["trend"]] == table(last, (
        "edge_model_version", "cohort", "passes", "escalation_rate", "target_escalation_rate", "ece", "risk"))
    lines = [(p["data-partition"], p["data-rates"], p["data-targets"]) for p in panels.points["trend"]]
    assert lines == [(f"{e['edge_model_version']}/{e['cohort']}",
                      " ".join(shown(p["escalation_rate"]) for p in e["points"]),
                      " ".join(shown(p["target_escalation_rate"]) for p in e["points"])) for e in trend]
    beta = next(e for e in trend if e["cohort"] == COHORT)
    rates = [p["escalation_rate"] for p in beta["points"]]
    assert len(rates) == 2 and rates[0] != rates[1]  # two passes, the labelled traffic moved the rate
    assert [p["target_escalation_rate"] for p in beta["points"]] == [0.3, 0.3]
    assert loop["interval_s"] == 15.0
