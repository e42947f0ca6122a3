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

S is a JSON string, I an integer (microseconds since 1970-01-01T00:00:00Z), and F a float written as
a string in C99 hexadecimal notation (Python ``float.hex()``, C ``printf("%a")``), which is exact and
has one spelling per value. ``key_id`` is covered so that a signature cannot be re-labelled with
another key's id; ``signature`` is the only field left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from confroute.contract.policy import Policy

CANONICAL_PREFIX = b"confroute-policy-v1\n"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def canonical_policy_bytes(policy: Policy) -> bytes:
    """The format-v1 bytes of ``policy`` (see the module docstring); ``signature`` is not included."""
    document = {
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
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return CANONICAL_PREFIX + text.encode("ascii")


def microseconds_since_epoch(moment: datetime) -> int:
    """Whole microseconds since the Unix epoch of an aware datetime (exact integer arithmetic)."""
    return (moment - _EPOCH) // _MICROSECOND


def _floats(values: Iterable[float]) -> list[str]:
    return [float(value).hex() for value in values]
