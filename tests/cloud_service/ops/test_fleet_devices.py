"""The real fleet (tritonserver, Redis, the service as ``serve`` runs it, two enrolled edge agents): the
service's loop monitor learns each device's edge model build, policy and probe versions and last sighting from the
calls the agents already make, and ``cloud-service devices list`` shows them."""

from __future__ import annotations

import json
import re
import time

import pytest

from cloud_service.cli import main
from cloud_service.ops.devices import DeviceRecord, RedisDeviceDirectory
from tests.fleet_stack import Fleet
from tests.test_fleet_loop import DEVICES, first_policy, fleet, servers  # noqa: F401 -- fixtures

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
MONITOR_PASS_S = 15.0  # the service's default; the test waits for at most two passes


def test_the_service_learns_each_device_s_versions_from_its_calls(fleet: Fleet,  # noqa: F811 -- the fixture
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    control = fleet.publish(first_policy(fleet, post=0.6))
    fleet.wait_until_running(control.policy_version)
    started = time.time()
    fleet.ask_all("seen", 5)

    def records() -> dict[str, DeviceRecord]:
        found = fleet.run(RedisDeviceDirectory(fleet.client).records())
        return {record.device_id: record for record in found if record.policy_version == control.policy_version}

    deadline = time.monotonic() + 2 * MONITOR_PASS_S + 10
    while set(records()) != set(DEVICES):
        assert time.monotonic() < deadline, f"the monitor never stored both devices: {records()}"
        time.sleep(0.5)

    for record in records().values():
        assert record.edge_model_version == fleet.servers.edge_model.version and record.cohort == fleet.cohort
        assert record.last_seen_s >= started
        assert re.fullmatch(r"untrained|[0-9a-f]{12}", record.probe_version), record  # sent on every call
    assert main(["devices", "list", "--redis-url", fleet.redis.url, "--cohort", fleet.cohort, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {(row["id"], row["enrolled"], row["policy_version"]) for row in listed} == \
        {(device, True, control.policy_version) for device in DEVICES}
