"""Signing a router probe in the cloud and verifying it on the device, with the keys policies use.

``sign_probe`` sets ``key_id`` and signs the probe's canonical bytes (:func:`.canonical.canonical_probe_bytes`,
which cover the key id and a digest of the weights). ``ProbeVerifier`` passes a probe only if it names a
trusted key id and its signature verifies; every failure is ``InvalidPolicy`` (``probe.<field>``): a
policy whose probe is refused is refused with it.
"""

from __future__ import annotations

from dataclasses import replace

from confroute.contract.router_probe import RouterProbe
from confroute.errors import InvalidPolicy
from confroute.signing.canonical import canonical_probe_bytes
from confroute.signing.keys import SIGNATURE_BYTES, SigningKey, TrustedKeys


def sign_probe(probe: RouterProbe, key: SigningKey) -> RouterProbe:
    """``probe`` with ``key_id`` and ``signature`` set by ``key`` (any earlier signature is replaced)."""
    unsigned = replace(probe, key_id=key.key_id, signature=b"")
    return replace(unsigned, signature=key.sign(canonical_probe_bytes(unsigned)))


class ProbeVerifier:
    """Raises ``InvalidPolicy`` unless a probe carries a valid signature by one of ``trusted``."""

    def __init__(self, trusted: TrustedKeys) -> None:
        if not trusted.keys:
            raise InvalidPolicy("no trusted keys: every probe would be rejected", field="trusted_keys")
        self._trusted = trusted

    def __call__(self, probe: RouterProbe) -> None:
        fault = self._trusted.fault(probe.key_id, probe.signature, canonical_probe_bytes(replace(probe, signature=b"")))
        if fault == "unsigned":
            raise InvalidPolicy(f"its probe {probe.version} is unsigned", field="probe.signature")
        if fault == "untrusted key":
            raise InvalidPolicy(f"its probe is signed by key {probe.key_id!r}, which this device does not trust",
                                field="probe.key_id")
        if fault == "length":
            raise InvalidPolicy(f"its probe's signature has {len(probe.signature)} bytes, not {SIGNATURE_BYTES}",
                                field="probe.signature")
        if fault is not None:
            raise InvalidPolicy(f"its probe {probe.version}'s signature does not verify with key {probe.key_id}",
                                field="probe.signature")
