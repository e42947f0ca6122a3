"""Signing a bundle release in the cloud and verifying it on the device: the same Ed25519 keys and key ids
as policies (:mod:`.keys`), over a documented canonical form of their own (format v1)::

    b"confroute-bundle-v1\\n" + JSON

JSON as policies write it (keys sorted, ``","`` and ``":"`` separators, ASCII only), holding exactly::

    {"bundle_version": S, "cohort": S, "files": [[S name, I size, S sha256], ...] (sorted by name),
     "issued_at_us": I, "key_id": S, "model_id": S}

``key_id`` is covered, ``signature`` is the only field left out. The prefix differs from the policies' one,
so that no signed policy can be passed off as a release or the other way round. Every failure to verify is
``BundleCorrupt`` with the reason: an unsigned or badly signed release must not be installed.
"""

from __future__ import annotations

import json
from dataclasses import replace

from confroute.contract.bundle_release import BundleRelease
from confroute.errors import BundleCorrupt, InvalidInput
from confroute.signing.keys import SIGNATURE_BYTES, SigningKey, TrustedKeys

CANONICAL_BUNDLE_PREFIX = b"confroute-bundle-v1\n"


def canonical_release_bytes(release: BundleRelease) -> bytes:
    """The format-v1 bytes of ``release`` (see the module docstring); ``signature`` is not included."""
    document = {
        "bundle_version": release.bundle_version,
        "cohort": release.cohort,
        "files": [[f.name, f.size, f.sha256] for f in release.files],
        "issued_at_us": release.issued_at_us,
        "key_id": release.key_id,
        "model_id": release.model_id,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return CANONICAL_BUNDLE_PREFIX + text.encode("ascii")


def sign_release(release: BundleRelease, key: SigningKey) -> BundleRelease:
    """``release`` with ``key_id`` and ``signature`` set by ``key``."""
    unsigned = replace(release, key_id=key.key_id, signature=b"")
    return replace(unsigned, signature=key.sign(canonical_release_bytes(unsigned)))


class ReleaseVerifier:
    """Raises ``BundleCorrupt`` unless a release carries a valid signature by one of ``trusted``."""

    def __init__(self, trusted: TrustedKeys) -> None:
        if not trusted.keys:
            raise InvalidInput("no trusted keys: every bundle release would be refused", field="trusted_keys")
        self._trusted = trusted

    def __call__(self, release: BundleRelease) -> None:
        fault = self._trusted.fault(release.key_id, release.signature, canonical_release_bytes(release.unsigned()))
        if fault == "unsigned":
            raise BundleCorrupt(f"bundle release {release.bundle_version} is unsigned")
        if fault == "untrusted key":
            raise BundleCorrupt(f"bundle release {release.bundle_version} is signed by key {release.key_id!r}, "
                                "which this device does not trust")
        if fault == "length":
            raise BundleCorrupt(f"bundle release signature has {len(release.signature)} bytes, not {SIGNATURE_BYTES}")
        if fault is not None:
            raise BundleCorrupt(f"bundle release {release.bundle_version}: its signature does not verify with key "
                                f"{release.key_id}")
