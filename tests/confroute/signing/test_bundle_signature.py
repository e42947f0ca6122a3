"""Bundle releases: file names that cannot leave the bundle folder, JSON and protobuf round trips, and the
signature (the policies' keys, a canonical form of its own)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from confroute.contract.bundle_release import BundleFile, BundleRelease, check_file_name
from confroute.errors import BundleCorrupt, InvalidInput
from confroute.signing import TrustedKeys, generate_key_pair
from confroute.signing.bundle_signature import (
    CANONICAL_BUNDLE_PREFIX,
    ReleaseVerifier,
    canonical_release_bytes,
    sign_release,
)


def release() -> BundleRelease:
    return BundleRelease("beta", "0123456789ab", "tiny", (BundleFile("manifest.json", 10, "a" * 64),
                                                          BundleFile("model.onnx", 20, "b" * 64)), 1_700_000)


@pytest.mark.parametrize("name", ["", "../x", "/etc/passwd", ".verified.json", "a//b", "a/../b", "a\\\\b", "x/.y"])
def test_a_file_name_that_could_leave_the_bundle_folder_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_file_name(name)


def test_plain_names_and_subfolders_are_allowed() -> None:
    assert check_file_name("tokenizer/vocab.json") == "tokenizer/vocab.json"


def test_a_release_round_trips_through_json_and_protobuf() -> None:
    signed = dataclasses.replace(release(), signature=b"\x01" * 64, key_id="ed25519:00")
    assert BundleRelease.from_json(signed.to_json()) == signed
    assert BundleRelease.from_pb(signed.to_pb()) == signed


def test_files_out_of_order_or_twice_are_refused() -> None:
    files = release().files
    with pytest.raises(InvalidInput):
        dataclasses.replace(release(), files=(files[1], files[0]))
    with pytest.raises(InvalidInput):
        dataclasses.replace(release(), files=(files[0], files[0]))


def test_a_signed_release_verifies_and_any_changed_field_does_not(tmp_path: Path) -> None:
    key = generate_key_pair(tmp_path / "k")
    verify = ReleaseVerifier(TrustedKeys.of([key.private_key.public_key()]))
    signed = sign_release(release(), key)
    verify(signed)
    assert canonical_release_bytes(signed).startswith(CANONICAL_BUNDLE_PREFIX)
    for changed in (dataclasses.replace(signed, cohort="other"), dataclasses.replace(signed, bundle_version="x"),
                    dataclasses.replace(signed, files=(dataclasses.replace(signed.files[0], size=11),
                                                       signed.files[1])),
                    dataclasses.replace(signed, issued_at_us=1)):
        with pytest.raises(BundleCorrupt, match="does not verify"):
            verify(changed)


def test_a_key_the_device_does_not_trust_is_refused(tmp_path: Path) -> None:
    trusted, other = generate_key_pair(tmp_path / "t"), generate_key_pair(tmp_path / "o")
    verify = ReleaseVerifier(TrustedKeys.of([trusted.private_key.public_key()]))
    with pytest.raises(BundleCorrupt, match="does not trust"):
        verify(sign_release(release(), other))
