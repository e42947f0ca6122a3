"""Signed routing policies: canonical bytes, Ed25519 keys with derived key ids, signing and verifying.

* :mod:`.canonical` - the bytes a signature covers, independent of protobuf serialisation.
* :mod:`.keys` - key pairs on disk (PEM), key ids, the set of keys a device trusts.
* :mod:`.policy_signature` - ``sign_policy`` in the cloud, ``PolicyVerifier`` on the device.
* :mod:`.probe_signature` - ``sign_probe`` and ``ProbeVerifier``: router probes, with the same keys.
"""

from confroute.signing.canonical import CANONICAL_PREFIX, canonical_policy_bytes
from confroute.signing.keys import (
    SigningKey,
    TrustedKeys,
    generate_key_pair,
    key_id_of,
    load_signing_key,
    load_trusted_keys,
)
from confroute.signing.policy_signature import PolicyVerifier, sign_policy
from confroute.signing.probe_signature import ProbeVerifier, sign_probe

__all__ = [
    "CANONICAL_PREFIX",
    "PolicyVerifier",
    "ProbeVerifier",
    "SigningKey",
    "TrustedKeys",
    "canonical_policy_bytes",
    "generate_key_pair",
    "key_id_of",
    "load_signing_key",
    "load_trusted_keys",
    "sign_policy",
    "sign_probe",
]
