"""The policy watcher against the cloud's real FleetService: policies pushed as they are published,
applied and saved; bad ones rejected while the watch goes on; reconnects after the cloud comes back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confroute.backoff import Backoff
from confroute.contract import ModelRef
from edge_agent.cloud import CloudConfig, PolicyKeeper, PolicyWatcher
from tests.edge_agent.cloud.real_cloud import RealCloud
from tests.edge_agent.cloud.samples import COHORT, EDGE_MODEL, policy
from tests.edge_agent.cloud.scripted import free_port

WAIT_S = 5.0
QUICK = Backoff(base_s=0.02, cap_s=0.2)


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@contextmanager
def watching(target: str, keeper: PolicyKeeper, **changes: Any) -> Iterator[PolicyWatcher]:
    values: dict[str, Any] = {"target": target, "reconnect": QUICK, "max_reconnect_backoff_s": 0.2} | changes
    with PolicyWatcher(keeper, CloudConfig(**values), device_id="device-1") as watcher:
        yield watcher


def test_a_published_policy_reaches_the_device_and_is_saved(real_cloud: RealCloud, policy_path: Path) -> None:
    keeper = PolicyKeeper(EDGE_MODEL, COHORT, policy_path)
    with watching(real_cloud.target, keeper):
        real_cloud.publish(policy("v1"))
        eventually(lambda: keeper.current.policy_version == "v1", "v1 on the device")

        real_cloud.publish(policy("v2", minutes=1))
        eventually(lambda: keeper.current.policy_version == "v2", "v2 on the device")

    assert PolicyKeeper(EDGE_MODEL, COHORT, policy_path).current == policy("v2", minutes=1)


def test_bad_policies_are_rejected_and_the_watch_goes_on(real_cloud: RealCloud) -> None:
    keeper = PolicyKeeper(EDGE_MODEL, COHORT)
    with watching(real_cloud.target, keeper) as watcher:
        real_cloud.publish(policy("v1", minutes=10))
        eventually(lambda: keeper.current.policy_version == "v1", "v1 on the device")

        real_cloud.publish(policy("v0", minutes=5))  # stale
        eventually(lambda: watcher.received == 2, "the stale policy delivered")
        real_cloud.publish(policy("v-other", minutes=20, edge_model=ModelRef("other-model", EDGE_MODEL.version)))
        eventually(lambda: watcher.received == 3, "the foreign policy delivered")
        assert keeper.current.policy_version == "v1"

        real_cloud.publish(policy("v2", minutes=30))
        eventually(lambda: keeper.current.policy_version == "v2", "v2 on the device")


def test_a_device_restarted_with_a_saved_policy_is_not_sent_it_again(real_cloud: RealCloud, policy_path: Path) -> None:
    real_cloud.publish(policy("v1"))
    PolicyKeeper(EDGE_MODEL, COHORT, policy_path).offer(policy("v1"))

    keeper = PolicyKeeper(EDGE_MODEL, COHORT, policy_path)
    with watching(real_cloud.target, keeper, watch_period_s=0.2) as watcher:
        time.sleep(0.6)  # a few renewals of the watch, each asking with the held version
        real_cloud.publish(policy("v2", minutes=1))
        eventually(lambda: keeper.current.policy_version == "v2", "v2 on the device")
    assert watcher.received == 1


def test_the_watcher_reconnects_when_the_cloud_comes_up(policy_path: Path) -> None:
    port = free_port()
    keeper = PolicyKeeper(EDGE_MODEL, COHORT, policy_path)
    with watching(f"127.0.0.1:{port}", keeper):
        time.sleep(0.3)  # a few failed attempts first
        cloud = RealCloud(listen=f"127.0.0.1:{port}")
        try:
            cloud.publish(policy("v1"))
            eventually(lambda: keeper.current.policy_version == "v1", "v1 after the reconnect")
        finally:
            cloud.close()


def test_stopping_the_watcher_is_prompt(real_cloud: RealCloud) -> None:
    watcher = PolicyWatcher(PolicyKeeper(EDGE_MODEL, COHORT), CloudConfig(real_cloud.target), device_id="device-1")
    watcher.start()
    time.sleep(0.1)
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 1.0
