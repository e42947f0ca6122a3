"""Signed router probes: the probe travels inside its policy's message, its version is a digest of its
weights, its own signature catches every change, and a policy naming a probe is signed over that name while
a policy naming none keeps the canonical bytes (and signatures) it had before the field."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from confroute.contract import Policy
from confroute.contract.router_probe import RouterProbe
from confroute.errors import InvalidPolicy
from confroute.signing import (
    CANONICAL_PREFIX,
    PolicyVerifier,
    ProbeVerifier,
    TrustedKeys,
    canonical_policy_bytes,
    generate_key_pair,
    sign_policy,
    sign_probe,
)
from confroute.signing.canonical import PROBE_CANONICAL_PREFIX, canonical_probe_bytes
from tests.confroute.signing.test_policy_signature import a_policy


def a_probe(**changes: object) -> RouterProbe:
    probe = RouterProbe.of("sha256:b1", "beta", np.linspace(-1, 1, 8), -0.25, (2, 3), {"examples": 120})
    return replace(probe, **changes)  # type: ignore[arg-type]


def test_a_probe_survives_the_wire_and_json_with_its_version() -> None:
    probe = a_probe(signature=b"s" * 64, key_id="ed25519:00")
    assert RouterProbe.from_pb(probe.to_pb()) == probe
    assert RouterProbe.from_json(probe.to_json()) == probe
    assert probe.version.startswith("probe-") and probe.version != a_probe(bias=0.25).version
    np.testing.assert_array_equal(probe.weight, np.linspace(-1, 1, 8).astype(np.float32))


def test_a_probe_whose_weights_do_not_match_its_version_is_refused() -> None:
    pb = a_probe().to_pb()
    pb.bias = 0.5
    with pytest.raises(InvalidPolicy) as caught:
        RouterProbe.from_pb(pb)
    assert caught.value.field == "probe.version"


def test_a_policy_carries_the_probe_it_names_and_nothing_else() -> None:
    probe = a_probe()
    policy = a_policy(probe_version=probe.version, probe=probe)
    assert Policy.from_pb(policy.to_pb()) == policy
    with pytest.raises(InvalidPolicy) as caught:
        a_policy(probe_version="probe-0000000000000000", probe=probe)
    assert caught.value.field == "probe_version"
    other = replace(probe, edge_model_version="another-build")
    with pytest.raises(InvalidPolicy) as caught:
        a_policy(probe_version=other.version, probe=other)
    assert caught.value.field == "probe.edge_model_version"


def test_a_policy_naming_no_probe_keeps_its_old_canonical_bytes() -> None:
    document = json.loads(canonical_policy_bytes(a_policy())[len(CANONICAL_PREFIX):])
    assert "probe_version" not in document  # a policy signed before the field still verifies
    named = json.loads(canonical_policy_bytes(a_policy(probe_version="probe-1"))[len(CANONICAL_PREFIX):])
    assert named["probe_version"] == "probe-1"


def test_the_probe_canonical_bytes_are_the_documented_json() -> None:
    raw = canonical_probe_bytes(a_probe(key_id="ed25519:00"))
    assert raw.startswith(PROBE_CANONICAL_PREFIX)
    document = json.loads(raw[len(PROBE_CANONICAL_PREFIX):])
    assert set(document) == {"bias", "cohort", "edge_model_version", "key_id", "layers", "provenance", "version",
                             "weight_sha256"}
    assert float.fromhex(document["bias"]) == -0.25 and document["layers"] == [2, 3]


@pytest.mark.parametrize("change", [
    {"bias": 0.5}, {"cohort": "alpha"}, {"edge_model_version": "other"}, {"layers": (1, 3)},
    {"provenance": {"examples": 121}}, {"weight_f32le": np.ones(8, "<f4").tobytes()}])
def test_every_change_to_a_signed_probe_fails_its_signature(tmp_path: Path, change: dict[str, object]) -> None:
    key = generate_key_pair(tmp_path / "fleet")
    verify = ProbeVerifier(TrustedKeys.of([key.private_key.public_key()]))
    signed = sign_probe(a_probe(), key)
    verify(signed)
    with pytest.raises(InvalidPolicy) as caught:
        verify(replace(signed, **change))  # type: ignore[arg-type]
    assert caught.value.field == "probe.signature"


def test_a_probe_signed_by_an_untrusted_key_or_unsigned_is_refused(tmp_path: Path) -> None:
    trusted = generate_key_pair(tmp_path / "fleet")
    verify = ProbeVerifier(TrustedKeys.of([trusted.private_key.public_key()]))
    for probe, field in ((sign_probe(a_probe(), generate_key_pair(tmp_path / "rogue")), "probe.key_id"),
                         (a_probe(), "probe.signature")):
        with pytest.raises(InvalidPolicy) as caught:
            verify(probe)
        assert caught.value.field == field


def test_the_policy_signature_covers_the_probe_it_names(tmp_path: Path) -> None:
    key = generate_key_pair(tmp_path / "fleet")
    verify = PolicyVerifier(TrustedKeys.of([key.private_key.public_key()]))
    probe = sign_probe(a_probe(), key)
    signed = sign_policy(a_policy(probe_version=probe.version, probe=probe), key)
    verify(signed)
    other = sign_probe(a_probe(bias=1.0), key)
    with pytest.raises(InvalidPolicy):
        verify(replace(signed, probe_version=other.version, probe=other))
