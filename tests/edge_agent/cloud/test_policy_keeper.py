"""The policy keeper: the built-in default first, then the last good policy, saved and reloaded; every
stale, malformed, out-of-range or foreign policy rejected with a reason while the last good one stays."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path

import pytest

from confroute.contract import ModelRef, Policy, Thresholds
from confroute.errors import InvalidPolicy
from confroute.v1 import fleet_pb2
from edge_agent.cloud import PolicyKeeper, Verdict
from tests.edge_agent.cloud.samples import COHORT, EDGE_MODEL, policy


def keeper(path: Path | None = None, **kwargs: object) -> PolicyKeeper:
    return PolicyKeeper(EDGE_MODEL, COHORT, path, **kwargs)  # type: ignore[arg-type]


def test_a_new_device_routes_with_the_built_in_default() -> None:
    k = keeper()
    assert k.current.policy_version == "builtin"
    assert k.current.edge_model == EDGE_MODEL and k.current.cohort == COHORT
    assert k.received_version == ""


def test_a_valid_policy_is_applied_and_saved_for_the_next_start(policy_path: Path) -> None:
    first = keeper(policy_path)

    assert first.offer(policy("v1")) == Verdict(True)
    assert first.current == policy("v1")

    restarted = keeper(policy_path)  # offline: the cloud is not asked
    assert restarted.current == policy("v1")
    assert restarted.received_version == "v1"
    assert json.loads(policy_path.read_text())["policyVersion"] == "v1"
    assert [p.name for p in policy_path.parent.iterdir()] == ["policy.json"]  # no temporary file left


def test_a_newer_policy_replaces_the_held_one(policy_path: Path) -> None:
    k = keeper(policy_path)
    k.offer(policy("v1", minutes=0))
    assert k.offer(policy("v2", minutes=5)).applied
    assert keeper(policy_path).current.policy_version == "v2"


def test_the_held_policy_delivered_again_is_a_quiet_no_op(caplog: pytest.LogCaptureFixture) -> None:
    k = keeper()
    k.offer(policy("v1"))
    caplog.clear()  # the first offer logs "applied" when an earlier test left INFO on
    with caplog.at_level(logging.WARNING):
        assert k.offer(policy("v1")) == Verdict(False, "already current")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def rejected(k: PolicyKeeper, offered: Policy | fleet_pb2.Policy) -> str:
    verdict = k.offer(offered) if isinstance(offered, Policy) else k.offer_pb(offered)
    assert not verdict.applied
    return verdict.reason


@pytest.fixture
def holding_v1(policy_path: Path) -> PolicyKeeper:
    k = keeper(policy_path)
    k.offer(policy("v1", minutes=10))
    return k


def test_a_stale_policy_is_rejected(holding_v1: PolicyKeeper) -> None:
    assert "stale" in rejected(holding_v1, policy("v0", minutes=5))
    assert "stale" in rejected(holding_v1, policy("v9", minutes=10))  # issued at the same moment: not newer


def test_the_held_version_with_other_content_is_rejected(holding_v1: PolicyKeeper) -> None:
    assert "other content" in rejected(holding_v1, policy("v1", minutes=20, shadow_rate=0.5))


@pytest.mark.parametrize(
    "model", [ModelRef(EDGE_MODEL.id, "sha256:another-build"), ModelRef("another-model", EDGE_MODEL.version)]
)
def test_a_policy_for_another_edge_model_is_rejected(holding_v1: PolicyKeeper, model: ModelRef) -> None:
    assert "edge model" in rejected(holding_v1, policy("v2", minutes=20, edge_model=model))


def test_a_policy_for_another_cohort_is_rejected(holding_v1: PolicyKeeper) -> None:
    assert "cohort" in rejected(holding_v1, policy("v2", minutes=20, cohort="stable"))


@pytest.mark.parametrize("bad", [math.nan, 1.5, -0.1])
def test_out_of_range_thresholds_are_rejected(holding_v1: PolicyKeeper, bad: float) -> None:
    received = policy("v2", minutes=20).to_pb()
    received.thresholds.post = bad
    assert "thresholds.post" in rejected(holding_v1, received)
    with pytest.raises(InvalidPolicy, match=r"thresholds\.post"):  # nor can such a policy be built in-process
        Thresholds(pre=0.5, post=bad, hybrid_low=0.3, hybrid_high=0.8)


def test_malformed_policies_from_the_wire_are_rejected(holding_v1: PolicyKeeper) -> None:
    unknown_mode = policy("v2", minutes=20).to_pb()
    unknown_mode.mode = 7  # type: ignore[assignment]
    assert "mode" in rejected(holding_v1, unknown_mode)

    unset_mode = policy("v3", minutes=20).to_pb()
    unset_mode.mode = 0  # type: ignore[assignment]
    assert "mode" in rejected(holding_v1, unset_mode)

    assert "policy_version" in rejected(holding_v1, fleet_pb2.Policy())


def test_the_last_good_policy_survives_every_rejection(holding_v1: PolicyKeeper, policy_path: Path) -> None:
    rejected(holding_v1, policy("v0", minutes=1))
    rejected(holding_v1, policy("v2", minutes=20, cohort="stable"))

    assert holding_v1.current == policy("v1", minutes=10)
    assert keeper(policy_path).current == policy("v1", minutes=10)


def test_a_rejection_is_logged_with_its_reason(holding_v1: PolicyKeeper, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="edge_agent.cloud.policy"):
        rejected(holding_v1, policy("v0", minutes=1))
    assert "policy v0 rejected" in caplog.text and "stale" in caplog.text and "keeping v1" in caplog.text


def test_the_signature_hook_can_refuse_a_policy() -> None:
    def require_signature(p: Policy) -> None:
        if not p.signature:
            raise InvalidPolicy("unsigned", field="signature")

    k = keeper(verify_signature=require_signature)
    assert rejected(k, policy("v1")) == "unsigned"
    assert k.offer(policy("v1", signature=b"sig", key_id="k1")).applied


def test_a_corrupt_saved_policy_is_ignored_at_start(policy_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    policy_path.parent.mkdir(parents=True)
    policy_path.write_text("{not json", encoding="utf-8")

    with caplog.at_level(logging.WARNING):
        k = keeper(policy_path)

    assert k.current.policy_version == "builtin"
    assert "ignoring the saved policy" in caplog.text


def test_a_saved_policy_for_a_replaced_bundle_is_ignored_at_start(policy_path: Path) -> None:
    keeper(policy_path).offer(policy("v1"))

    upgraded = PolicyKeeper(ModelRef(EDGE_MODEL.id, "sha256:b2"), COHORT, policy_path)

    assert upgraded.current.policy_version == "builtin"


def test_a_policy_that_cannot_be_saved_still_applies(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "policy.json"
    blocked.mkdir()  # a folder where the file should go

    with caplog.at_level(logging.WARNING):
        k = keeper(blocked)
        assert k.offer(policy("v1")).applied

    assert k.current.policy_version == "v1"
    assert "cannot be saved" in caplog.text


def test_a_policy_built_in_process_gets_the_wire_checks_too() -> None:
    with pytest.raises(InvalidPolicy, match="timezone"):  # no invalid policy exists to offer
        replace(policy("v1"), issued_at=policy("v1").issued_at.replace(tzinfo=None))
