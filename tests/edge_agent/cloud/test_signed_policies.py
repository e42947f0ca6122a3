"""A device that trusts signing keys applies only policies signed by them: forged, replayed, unsigned,
foreign and malformed policies are rejected with a logged reason, and the last good policy stays, also
across a restart. A rotated key is accepted once the device trusts it."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from confroute.contract import ModelRef, Policy, Thresholds
from confroute.signing import SigningKey, generate_key_pair, sign_policy
from edge_agent.cloud import PolicyKeeper, signature_check
from tests.edge_agent.cloud.samples import COHORT, EDGE_MODEL, policy


@pytest.fixture
def trust_dir(tmp_path: Path) -> Path:
    return tmp_path / "trusted"


@pytest.fixture
def key(trust_dir: Path) -> SigningKey:
    return generate_key_pair(trust_dir / "cloud-2026a")


def signed_keeper(trust_dir: Path, policy_path: Path | None = None) -> PolicyKeeper:
    return PolicyKeeper(EDGE_MODEL, COHORT, policy_path, verify_signature=signature_check([trust_dir]))


def signed(version: str, key: SigningKey, minutes: int = 0, **changes: object) -> Policy:
    return sign_policy(policy(version, minutes, **changes), key)


def reason(keeper: PolicyKeeper, offered: Policy) -> str:
    verdict = keeper.offer(offered)
    assert not verdict.applied
    return verdict.reason


def test_a_signed_policy_is_applied(trust_dir: Path, key: SigningKey) -> None:
    keeper = signed_keeper(trust_dir)
    assert keeper.offer(signed("v1", key)).applied
    assert keeper.offer_pb(signed("v2", key, minutes=1).to_pb()).applied


def test_unsigned_and_forged_policies_are_rejected_and_the_last_good_one_stays(
    trust_dir: Path, key: SigningKey, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = signed_keeper(trust_dir)
    keeper.offer(signed("v1", key))
    lower = Thresholds(pre=0.0, post=0.0, hybrid_low=0.0, hybrid_high=0.0)
    with caplog.at_level(logging.WARNING, logger="edge_agent.cloud.policy"):
        assert "unsigned" in reason(keeper, policy("v2", minutes=1))
        assert "does not verify" in reason(keeper, replace(signed("v2", key, minutes=1), thresholds=lower))
        outsider = generate_key_pair(tmp_path / "outsider")
        assert "does not trust" in reason(keeper, signed("v2", outsider, minutes=1))
    assert keeper.current == signed("v1", key)
    assert "policy v2 rejected" in caplog.text and "keeping v1" in caplog.text


def test_a_replayed_older_policy_is_rejected_even_after_a_restart(
    trust_dir: Path, key: SigningKey, policy_path: Path
) -> None:
    old, new = signed("v1", key, minutes=0), signed("v2", key, minutes=5)
    keeper = signed_keeper(trust_dir, policy_path)
    keeper.offer(old)
    keeper.offer(new)
    restarted = signed_keeper(trust_dir, policy_path)
    assert restarted.current == new
    assert "stale" in reason(restarted, old)  # validly signed, but older than the held one


def test_a_policy_for_another_model_build_is_rejected_though_validly_signed(trust_dir: Path, key: SigningKey) -> None:
    keeper = signed_keeper(trust_dir)
    other_build = signed("v1", key, edge_model=ModelRef(EDGE_MODEL.id, "sha256:other"))
    assert "edge model" in reason(keeper, other_build)


@pytest.mark.parametrize("field,value", [("post", 1.5), ("post", float("nan")), ("pre", -0.2)])
def test_a_validly_signed_out_of_range_policy_is_rejected(
    trust_dir: Path, key: SigningKey, field: str, value: float
) -> None:
    keeper = signed_keeper(trust_dir)
    received = signed("v1", key).to_pb()
    setattr(received.thresholds, field, value)
    verdict = keeper.offer_pb(received)
    assert not verdict.applied and f"thresholds.{field}" in verdict.reason


def test_malformed_policies_from_the_wire_are_rejected(trust_dir: Path, key: SigningKey) -> None:
    keeper = signed_keeper(trust_dir)
    unknown_mode = signed("v1", key).to_pb()
    unknown_mode.mode = 9  # type: ignore[assignment]
    assert "mode" in keeper.offer_pb(unknown_mode).reason
    assert keeper.current.policy_version == "builtin"


def test_a_saved_policy_must_verify_at_start(trust_dir: Path, key: SigningKey, policy_path: Path) -> None:
    PolicyKeeper(EDGE_MODEL, COHORT, policy_path).offer(policy("v1"))  # saved by a device that trusted anything
    assert signed_keeper(trust_dir, policy_path).current.policy_version == "builtin"


def test_a_rotated_key_is_accepted_once_trusted(trust_dir: Path, key: SigningKey, tmp_path: Path) -> None:
    rotated = generate_key_pair(tmp_path / "staging" / "cloud-2026b")
    before = signed_keeper(trust_dir)
    before.offer(signed("v1", key))
    assert "does not trust" in reason(before, signed("v2", rotated, minutes=1))

    (trust_dir / "cloud-2026b.pub").write_bytes((tmp_path / "staging" / "cloud-2026b.pub").read_bytes())
    during = signed_keeper(trust_dir)
    assert during.offer(signed("v1", key)).applied  # old key still trusted during the rotation
    assert during.offer(signed("v2", rotated, minutes=1)).applied
