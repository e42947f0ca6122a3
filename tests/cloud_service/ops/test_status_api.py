"""GET /api/status: the service's numbers for operators, and only for them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from cloud_service.config import ServiceConfig
from cloud_service.identity.service import IdentityServices, open_identity
from tests.cloud_service.identity.stack import FAST, make_fleet
from tests.cloud_service.memory_stores import MemoryPolicyStore
from tests.cloud_service.ops.service import (
    HISTORY,
    RolloutStore,
    labelled_traffic,
    live_policy,
    monitored_service,
    synthetic_traffic,
)
from tests.cloud_service.redis_server import RedisServer
from tests.factories import COHORT, EDGE

pytestmark = pytest.mark.timeout(60)


def get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_the_status_holds_the_numbers_of_the_traffic_it_served() -> None:
    store = MemoryPolicyStore()
    store.policies[(EDGE.version, COHORT)] = live_policy()
    with monitored_service(store=store) as service:
        synthetic_traffic(service, ok=6, failed=2)
        code, status = get(f"{service.http}/api/status")

    assert code == 200
    assert status["service"]["escalations"] == {"OK": 6.0, "UNAVAILABLE": 2.0}
    assert status["service"]["inflight"] == 0.0
    assert status["service"]["latency_ms"]["p50"] > 0
    queue_p95 = status["triton"].pop("queue_ms_p95")
    assert 25.0 < queue_p95 <= 50.0  # in the 25-50 ms bucket of 30 ms queues, interpolated as PromQL does
    assert status["triton"] == {"ready": True, "calls": 6.0, "queue_ms_mean": 30.0, "compute_ms_mean": 10.0,
                                "queue_to_compute": 3.0, "errors": {"UNAVAILABLE": 2.0}}
    assert status["outcome_log"]["buffered"] == 3.0  # the in-memory log's stats
    beta, gamma = status["fleet"]["partitions"]
    assert (beta["cohort"], beta["uploaded"], beta["escalation_rate"]) == (COHORT, 4.0, 0.25)
    assert beta["policy_version"] == "p-live" and beta["thresholds"]["post"] == pytest.approx(0.4)
    assert (gamma["cohort"], gamma["escalation_rate"], gamma["policy_version"]) == ("gamma", 0.5, None)
    assert beta["rollout"] is None  # the in-memory store keeps no rollouts


def test_the_status_shows_each_partition_s_canary() -> None:
    store = RolloutStore()
    store.policies[(EDGE.version, COHORT)] = live_policy()
    with monitored_service(store=store) as service:
        synthetic_traffic(service, ok=1, failed=0)
        _, status = get(f"{service.http}/api/status")

    beta, gamma = status["fleet"]["partitions"]
    assert beta["rollout"] == {"control": "p-live", "canary": "p-next", "canary_share": 0.1, "pinned": False,
                               "backpressure_shift": 0.0}
    assert gamma["rollout"] is None  # nothing published there


def test_only_operators_who_read_policies_see_the_status(tmp_path: Path, redis_server: RedisServer) -> None:
    fleet = make_fleet(tmp_path, redis_server.url)
    operator = fleet.enroll_token("alice", "ops", "--operator")
    device = fleet.enroll_token("device-1")
    config = ServiceConfig(listen="127.0.0.1:0", metrics_listen="", redis_url=redis_server.url,
                           identity_secret=str(fleet.ca_dir / "identity.secret"))

    async def authenticator(stack: AsyncExitStack) -> IdentityServices | None:
        return await stack.enter_async_context(open_identity(config, FAST))

    with monitored_service(authenticator=authenticator) as service:
        url = f"{service.http}/api/status"
        refused = [get(url)[0], get(url, "not-a-token")[0], get(url, device)[0]]
        code, status = get(url, operator)

    assert refused == [401, 401, 403]
    assert code == 200 and "service" in status


def test_the_status_shows_the_fleet_and_the_live_policy_over_the_last_window() -> None:
    store = RolloutStore()
    store.policies[(EDGE.version, COHORT)] = live_policy()
    with monitored_service(store=store, recalibrations=HISTORY) as service:
        synthetic_traffic(service, ok=2, failed=0)
        records = labelled_traffic(service)
        service.refresh()
        _, status = get(f"{service.http}/api/status")

    devices = status["devices"]
    assert devices["devices"] == 4 and devices["online"] == 4  # device-1..3 and device-7
    assert {"edge_model_version": EDGE.version, "cohort": COHORT, "probe_version": "probe-7",
            "devices": 1} in devices["by_probe_version"]
    windows = {w["cohort"]: w for w in status["loop"]["windows"]}
    beta = windows[COHORT]
    labelled = [r for r in records if r.label_source.value == "user_feedback"]
    assert beta["outcomes"] == 4 + len(records) and beta["labelled"] == len(labelled)
    assert beta["policy_version"] == "p-live" and beta["target_escalation_rate"] == 0.3
    assert beta["ece"] is not None and beta["auroc"] > 0.6 and len(beta["reliability"]) == 10
    assert len(beta["curve"]) == 10 and beta["operating_point"]["escalation_rate"] > 0
    assert windows["gamma"]["policy_version"] is None and windows["gamma"]["ece"] is None
    assert status["loop"]["history"][0]["version"] == "p-live"
