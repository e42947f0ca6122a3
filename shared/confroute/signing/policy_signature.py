"""Signing a policy in the cloud and verifying it on the device.

``sign_policy`` sets ``key_id`` and then signs the canonical bytes (:mod:`.canonical`), which cover the
key id. ``PolicyVerifier`` is the device's signature check (``edge_agent.cloud.policy.SignatureCheck``):
a policy passes only if it names a trusted key id and its signature verifies over its canonical bytes.
Every failure is ``InvalidPolicy`` with the reason.
"""

from __future__ import annotations

from dataclasses import replace

from confroute.contract.policy import Policy
from confroute.errors import InvalidPolicy
from confroute.signing.canonical import canonical_policy_bytes
from confroute.signing.keys import SIGNATURE_BYTES, SigningKey, TrustedKeys


def sign_policy(policy: Policy, key: SigningKey) -> Policy:
    """``policy`` with ``key_id`` and ``signature`` set by ``key`` (any earlier signature is replaced)."""
    unsigned = replace(policy, key_id=key.key_id, signature=b"")
    return replace(unsigned, signature=key.sign(canonical_policy_bytes(unsigned)))


class PolicyVerifier:
    """Raises ``InvalidPolicy`` unless a policy carries a valid signature by one of ``trusted``."""

    def __init__(self, trusted: TrustedKeys) -> None:
        if not trusted.keys:
            raise InvalidPolicy("no trusted policy keys: every policy would be rejected", field="trusted_keys")
        self._trusted = trusted

    @property
    def key_ids(self) -> tuple[str, ...]:
        return self._trusted.key_ids

    def __call__(self, policy: Policy) -> None:
        unsigned = canonical_policy_bytes(replace(policy, signature=b""))
        fault = self._trusted.fault(policy.key_id, policy.signature, unsigned)
        if fault == "unsigned":
            raise InvalidPolicy("it is unsigned", field="signature")
        if fault == "untrusted key":
            raise InvalidPolicy(f"it is signed by key {policy.key_id!r}, which this device does not trust",
                                field="key_id")
        if fault == "length":
            raise InvalidPolicy(f"its signature has {len(policy.signature)} bytes, not {SIGNATURE_BYTES}",
                                field="signature")
        if fault is not None:
            raise InvalidPolicy(f"its signature does not verify with key {policy.key_id}", field="signature")
