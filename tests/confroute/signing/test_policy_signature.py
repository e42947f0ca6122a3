"""Signed policies: canonical bytes that ignore protobuf, signatures that catch every change, key ids that
follow the key, and a trust set that spans a rotation."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from confroute.contract import CalibrationMap, ModelRef, Policy, RoutingMode, Thresholds
from confroute.errors import InvalidInput, InvalidPolicy
from confroute.signing import (
    CANONICAL_PREFIX,
    PolicyVerifier,
    TrustedKeys,
    canonical_policy_bytes,
    generate_key_pair,
    load_signing_key,
    load_trusted_keys,
    sign_policy,
)


def a_policy(**changes: object) -> Policy:
    base = Policy(
        policy_version="v1",
        edge_model=ModelRef("smollm2", "sha256:b1"),
        cohort="beta",
        mode=RoutingMode.HYBRID,
        thresholds=Thresholds(pre=0.5, post=0.6, hybrid_low=0.3, hybrid_high=0.8),
        issued_at=datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=timezone.utc),
        calibration=CalibrationMap(x=(0.0, 0.5, 1.0), y=(0.1, 0.5, 0.9)),
        shadow_rate=0.02,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_canonical_bytes_are_the_documented_json() -> None:
    raw = canonical_policy_bytes(a_policy(key_id="ed25519:00"))
    assert raw.startswith(CANONICAL_PREFIX)
    text = raw[len(CANONICAL_PREFIX):].decode("ascii")
    document = json.loads(text)
    assert text == json.dumps(document, sort_keys=True, separators=(",", ":"))
    assert document["thresholds"]["pre"] == (0.5).hex() and float.fromhex(document["shadow_rate"]) == 0.02
    assert document["issued_at_us"] == 1767614400123456
    assert document["mode"] == "hybrid" and document["key_id"] == "ed25519:00"
    assert "signature" not in document


def test_the_canonical_bytes_survive_a_protobuf_round_trip() -> None:
    policy = a_policy()
    assert canonical_policy_bytes(Policy.from_pb(policy.to_pb())) == canonical_policy_bytes(policy)


@pytest.fixture
def key_stem(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "policy-2026a"


def test_keygen_writes_a_private_key_only_its_owner_reads_and_refuses_to_overwrite(key_stem: Path) -> None:
    key = generate_key_pair(key_stem)
    private = key_stem.with_name("policy-2026a.key")
    assert private.stat().st_mode & 0o777 == 0o600
    assert load_signing_key(private).key_id == key.key_id
    assert key.key_id.startswith("ed25519:") and len(key.key_id) == len("ed25519:") + 16
    with pytest.raises(InvalidInput, match="cannot write"):
        generate_key_pair(key_stem)


def test_a_signed_policy_verifies_with_its_public_key(key_stem: Path) -> None:
    key = generate_key_pair(key_stem)
    verify = PolicyVerifier(load_trusted_keys([key_stem.parent]))
    signed = sign_policy(a_policy(), key)
    assert signed.key_id == key.key_id and len(signed.signature) == 64
    verify(signed)
    verify(Policy.from_pb(signed.to_pb()))  # and after the wire


@pytest.mark.parametrize(
    "tamper",
    [
        {"thresholds": Thresholds(pre=0.1, post=0.6, hybrid_low=0.3, hybrid_high=0.8)},
        {"shadow_rate": 0.0},
        {"policy_version": "v2"},
        {"cohort": "stable"},
        {"edge_model": ModelRef("smollm2", "sha256:b2")},
        {"issued_at": datetime(2027, 1, 1, tzinfo=timezone.utc)},
        {"calibration": CalibrationMap()},
        {"mode": RoutingMode.PRE},
    ],
)
def test_any_change_after_signing_is_caught(key_stem: Path, tamper: dict[str, object]) -> None:
    key = generate_key_pair(key_stem)
    forged = replace(sign_policy(a_policy(), key), **tamper)  # type: ignore[arg-type]
    with pytest.raises(InvalidPolicy, match="does not verify"):
        PolicyVerifier(TrustedKeys.of([key.private_key.public_key()]))(forged)


def test_unsigned_unknown_key_and_truncated_signatures_are_refused(tmp_path: Path) -> None:
    trusted = generate_key_pair(tmp_path / "trusted")
    stranger = generate_key_pair(tmp_path / "stranger")
    verify = PolicyVerifier(TrustedKeys.of([trusted.private_key.public_key()]))
    with pytest.raises(InvalidPolicy, match="unsigned"):
        verify(a_policy())
    with pytest.raises(InvalidPolicy, match="does not trust"):
        verify(sign_policy(a_policy(), stranger))
    relabelled = replace(sign_policy(a_policy(), stranger), key_id=trusted.key_id)  # a stranger claiming our id
    with pytest.raises(InvalidPolicy, match="does not verify"):
        verify(relabelled)
    signed = sign_policy(a_policy(), trusted)
    with pytest.raises(InvalidPolicy, match="bytes"):
        verify(replace(signed, signature=signed.signature[:10]))


def test_during_a_rotation_both_keys_are_trusted_then_only_the_new_one(tmp_path: Path) -> None:
    old = generate_key_pair(tmp_path / "trust" / "old")
    new = generate_key_pair(tmp_path / "trust" / "new")
    rotating = PolicyVerifier(load_trusted_keys([tmp_path / "trust"]))
    rotating(sign_policy(a_policy(), old))
    rotating(sign_policy(a_policy(), new))

    (tmp_path / "trust" / "old.pub").unlink()
    rotated = PolicyVerifier(load_trusted_keys([tmp_path / "trust"]))
    rotated(sign_policy(a_policy(), new))
    with pytest.raises(InvalidPolicy, match="does not trust"):
        rotated(sign_policy(a_policy(), old))


def test_bad_key_files_are_invalid_input(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key")
    with pytest.raises(InvalidInput, match="PEM public key"):
        load_trusted_keys([junk])
    with pytest.raises(InvalidInput, match="cannot read"):
        load_signing_key(tmp_path / "missing.key")
    with pytest.raises(InvalidPolicy, match="no trusted policy keys"):
        (tmp_path / "empty").mkdir()
        PolicyVerifier(load_trusted_keys([tmp_path / "empty"]))  # a folder with no *.pub
