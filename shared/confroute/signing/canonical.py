"""The canonical bytes of a policy: what an Ed25519 signature covers.

Protobuf serialisation is not canonical across languages and versions (field order of unknown fields,
map order, default values), so the signature covers a separate, documented encoding (format v1):

    b"confroute-policy-v1\\n" + JSON

where JSON is one UTF-8 object with keys sorted, no whitespace (``","`` and ``":"`` separators), ASCII
only (``\\uXXXX`` escapes), holding exactly::

    {"calibration": {"x": [F...], "y": [F...]},
     "cohort": S, "edge_model": {"id": S, "version": S},
     "issued_at_us": I, "key_id": S, "mode": "pre" | "post" | "hybrid",
     "policy_version": S, "shadow_rate": F,
     "thresholds": {"hybrid_high": F, "hybrid_low": F, "post": F, "pre": F}}

and, only when the policy names a probe, ``"probe_version": S`` (so the signatures of policies from
before the field still verify). The probe the policy carries is signed on its own (format below); the
policy's signature covers its version, which is a digest of its weights.

S is a JSON string, I an integer (microseconds since 1970-01-01T00:00:00Z), and F a float written as
a string in C99 hexadecimal notation (Python ``float.hex()``, C ``printf("%a")``), which is exact and
has one spelling per value. ``key_id`` is covered so that a signature cannot be re-labelled with
another key's id; ``signature`` is the only field left out.

A router probe (``confroute.contract.router_probe.RouterProbe``) is signed over
``b"confroute-router-probe-v1\n"`` + JSON in the same form, holding exactly::

    {"bias": F, "cohort": S, "edge_model_version": S, "key_id": S, "layers": [I, I],
     "provenance": S, "version": S, "weight_sha256": S}

where ``provenance`` is the provenance object as compact sorted-key JSON text and ``weight_sha256`` the hex
SHA-256 of the float32 little-endian weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from confroute.contract.policy import Policy
from confroute.contract.router_probe import RouterProbe

CANONICAL_PREFIX = b"confroute-policy-v1\n"
PROBE_CANONICAL_PREFIX = b"confroute-router-probe-v1\n"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def canonical_policy_bytes(policy: Policy) -> bytes:
    """The format-v1 bytes of ``policy`` (see the module docstring); ``signature`` is not included."""
    document: dict[str, object] = {
        "calibration": {"x": _floats(policy.calibration.x), "y": _floats(policy.calibration.y)},
        "cohort": policy.cohort,
        "edge_model": {"id": policy.edge_model.id, "version": policy.edge_model.version},
        "issued_at_us": microseconds_since_epoch(policy.issued_at),
        "key_id": policy.key_id,
        "mode": policy.mode.value,
        "policy_version": policy.policy_version,
        "shadow_rate": policy.shadow_rate.hex(),
        "thresholds": {
            "hybrid_high": policy.thresholds.hybrid_high.hex(),
            "hybrid_low": policy.thresholds.hybrid_low.hex(),
            "post": policy.thresholds.post.hex(),
            "pre": policy.thresholds.pre.hex(),
        },
    }
    if policy.probe_version:
        document["probe_version"] = policy.probe_version
    return CANONICAL_PREFIX + _json(document)


def canonical_probe_bytes(probe: RouterProbe) -> bytes:
    """The format-v1 bytes of a router probe (see the module docstring); ``signature`` is not included."""
    document: dict[str, object] = {
        "bias": float(probe.bias).hex(),
        "cohort": probe.cohort,
        "edge_model_version": probe.edge_model_version,
        "key_id": probe.key_id,
        "layers": [int(probe.layers[0]), int(probe.layers[1])],
        "provenance": json.dumps(dict(probe.provenance), sort_keys=True, separators=(",", ":"), ensure_ascii=True),
        "version": probe.version,
        "weight_sha256": hashlib.sha256(probe.weight_f32le).hexdigest(),
    }
    return PROBE_CANONICAL_PREFIX + _json(document)


def _json(document: dict[str, object]) -> bytes:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode("ascii")


def microseconds_since_epoch(moment: datetime) -> int:
    """Whole microseconds since the Unix epoch of an aware datetime (exact integer arithmetic)."""
    return (moment - _EPOCH) // _MICROSECOND


def _floats(values: Iterable[float]) -> list[str]:
    return [float(value).hex() for value in values]
