"""A real Prometheus on loopback scrapes a running service and evaluates deploy/monitoring/alerts.yml on it:
failing escalations, Triton queueing, and a live policy miscalibrated over the loop monitor's window."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cloud_service.cli import main
from confroute.contract import CalibrationMap
from tests.cloud_service.ops.service import RolloutStore, escalate, labelled_traffic, live_policy, monitored_service
from tests.cloud_service.redis_server import free_port

RULES = Path(__file__).resolve().parents[3] / "deploy" / "monitoring" / "alerts.yml"
WAIT_S = 40.0
pytestmark = pytest.mark.timeout(90)


def http_json(url: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read())


@contextmanager
def prometheus(tmp_path: Path, metrics_port: int) -> Iterator[str]:
    """Prometheus scraping ``metrics_port`` every second and evaluating the rules every second; yields its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian package prometheus; run scripts/setup_monitoring_tools.sh)")
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "confroute-service",
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }))
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), "prometheus ready")
        yield url
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
        assert process.returncode == 0, stderr


def _ready(url: str) -> bool:
    try:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{url}/-/ready", timeout=1).close()
    except OSError:
        return False
    return True


def wait_until(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def alert_states(url: str) -> dict[str, str]:
    alerts = http_json(f"{url}/api/v1/alerts")["data"]["alerts"]
    return {alert["labels"]["alertname"]: alert["state"] for alert in alerts}


def test_prometheus_scrapes_the_service_and_its_rules_turn_on_failing_traffic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = RolloutStore()
    # A live policy whose calibration map halves the score: over the window it claims 0.4 where the edge is
    # right 80% of the time, which the window's ECE shows.
    halving = replace(live_policy(), calibration=CalibrationMap((0.0, 1.0), (0.0, 0.5)))
    store.policies[(halving.edge_model.version, halving.cohort)] = halving
    with monitored_service(store=store) as service, prometheus(tmp_path, service.metrics_port) as url:
        labelled_traffic(service, n=600)
        window = service.refresh().windows[0]
        sent = 0

        def traffic_then_alerts() -> dict[str, str]:
            nonlocal sent
            for i in range(10):
                escalate(service, f"{'fail' if i % 2 else 'ok'}-{sent}-{i}")
            sent += 10
            states = alert_states(url)
            wanted = {"ConfrouteEscalationErrors", "ConfrouteTritonQueueing", "ConfrouteWindowCalibrationError"}
            return states if wanted <= states.keys() else {}

        states = wait_until(traffic_then_alerts, "the alerts to turn pending")
        query = urllib.parse.quote('sum(confroute_escalations_total{status="UNAVAILABLE"})')
        scraped = float(http_json(f"{url}/api/v1/query?query={query}")["data"]["result"][0]["value"][1])
        assert main(["status", "--url", service.http, "--prometheus-url", url]) == 0

    assert states["ConfrouteEscalationErrors"] == "pending"  # true now; fires after its `for: 5m`
    assert states["ConfrouteTritonQueueing"] == "pending"  # 30 ms queued per 10 ms computed
    assert states["ConfrouteWindowCalibrationError"] == "pending"  # the loop monitor's gauge, scraped
    assert window.labelled >= 200 and window.ece is not None and window.ece > 0.1
    assert "ConfrouteOutcomeLogDropping" not in states
    assert 0 < scraped <= sent / 2
    screen = capsys.readouterr().out
    assert "alerts    none firing" in screen  # pending is not firing yet
    assert "workers   none reporting to Prometheus" in screen  # this Prometheus scrapes the service only
