"""``cloud-service status``: one screen from the status API, JSON for scripts, clear errors."""

from __future__ import annotations

import json
import re
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from cloud_service.cli import main
from cloud_service.config import ServiceConfig
from cloud_service.identity.service import IdentityServices, open_identity
from cloud_service.ops.status_command import render
from tests.cloud_service.identity.stack import FAST, make_fleet
from tests.cloud_service.memory_stores import MemoryPolicyStore
from tests.cloud_service.ops.service import labelled_traffic, live_policy, monitored_service, synthetic_traffic
from tests.cloud_service.ops.test_dashboard import status_of
from tests.cloud_service.redis_server import RedisServer, free_port
from tests.factories import COHORT, EDGE

pytestmark = pytest.mark.timeout(60)


def test_status_shows_the_service_on_one_screen(capsys: pytest.CaptureFixture[str]) -> None:
    with monitored_service() as service:
        synthetic_traffic(service, ok=6, failed=2)
        code = main(["status", "--url", service.http])

    screen = capsys.readouterr().out
    assert code == 0
    assert "escalations OK 6, UNAVAILABLE 2" in screen
    assert "triton    ready, 6 calls, queue 30 ms, compute 10 ms (means), errors UNAVAILABLE 2" in screen
    assert any(line.split()[:6] == ["2026.01", "beta", "4", "1", "0.25", "-"] for line in screen.splitlines())
    assert len(screen.splitlines()) <= 24  # one screen


def test_status_json_is_the_status_document(capsys: pytest.CaptureFixture[str]) -> None:
    with monitored_service() as service:
        synthetic_traffic(service, ok=1, failed=0)
        assert main(["status", "--url", service.http, "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["service"]["escalations"] == {"OK": 1.0}
    assert {p["cohort"] for p in document["fleet"]["partitions"]} == {"beta", "gamma"}


def test_an_unreachable_service_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    assert main(["status", "--url", url]) == 1
    assert f"cloud-service: error: cannot reach the status API at {url}/api/status" in capsys.readouterr().err


def test_a_refused_token_is_a_clear_error(
    tmp_path: Path, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = make_fleet(tmp_path, redis_server.url)
    device_token = tmp_path / "device.token"
    device_token.write_text(fleet.enroll_token("device-1"))
    wrong_token = tmp_path / "wrong.token"
    wrong_token.write_text("not-a-token\n")
    config = ServiceConfig(listen="127.0.0.1:0", metrics_listen="", redis_url=redis_server.url,
                           identity_secret=str(fleet.ca_dir / "identity.secret"))

    async def authenticator(stack: AsyncExitStack) -> IdentityServices | None:
        return await stack.enter_async_context(open_identity(config, FAST))

    with monitored_service(authenticator=authenticator) as service:
        codes = [main(["status", "--url", service.http, "--token-file", str(path)])
                 for path in (wrong_token, device_token)]

    errors = capsys.readouterr().err
    assert codes == [1, 1]
    assert "refused the credentials (401)" in errors
    assert "refused this operator (403): device device-1 may not read the status" in errors


def test_status_shows_the_devices_and_the_last_window(capsys: pytest.CaptureFixture[str]) -> None:
    store = MemoryPolicyStore()
    store.policies[(EDGE.version, COHORT)] = live_policy()
    with monitored_service(store=store) as service:
        labelled_traffic(service)
        window = next(w for w in service.refresh().windows if w.cohort == COHORT)
        assert main(["status", "--url", service.http]) == 0

    screen = capsys.readouterr().out
    assert "devices   3 known, 3 online; 0 behind their rollout; probe versions probe-7, unreported" in screen
    beta = next(line.split() for line in screen.splitlines() if line.split()[:2] == [EDGE.version, COHORT])
    assert beta[-3:] == [str(round(value or 0, 4)) for value in (window.ece, window.auroc, window.risk)]
    assert re.search(r"redis     ok \(the monitor's last pass \d+ s ago\); outcome log write errors -\n", screen)
    assert "workers   (give --prometheus-url)" in screen


def test_redis_failing_and_the_workers_read_on_the_screen() -> None:
    with monitored_service() as service:
        status = json.loads(json.dumps(status_of(service.http)))
    status["loop"].update(refreshed_at=status["generated_at"] - 40, error="Redis failed while reading: timeout")
    status["workers"] = {"last_success_age_s": {"recalibrate": 42.0, "judge": 7.5},
                         "stream_lag": {"recalibrate": 0.0, "judge": 12.0}}
    screen = render(status)
    assert "redis     FAILING: Redis failed while reading: timeout (last good pass 40 s ago)" in screen
    assert "workers   last good pass: judge 7.5 s ago, recalibrate 42 s ago; lag judge 12, recalibrate 0" in screen
    status["workers"] = {"last_success_age_s": {}, "stream_lag": {}}
    assert "workers   none reporting to Prometheus" in render(status)
