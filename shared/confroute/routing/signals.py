"""The names of the signals routing reads, and how a signal is read.

The fused head of an edge model bundle reports named signals (``edge_agent.model.signals``): every
finished generation has ``logprob_mean``; ``probe_tbg`` and ``probe_slt`` are present only when the bundle's
TBG (read after prefill) and SLT (read after generation) probes are trained. The same names travel in
escalation requests and outcome records, so the cloud reads what the device routed on.

Probes are read as "higher = the edge is more likely right". A probe trained on an uncertainty label
(e.g. binarised high semantic entropy) must be written into the bundle negated: sigmoid(-z) = 1 - sigmoid(z).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from confroute.errors import InvalidInput

PROBE_TBG = "probe_tbg"
PROBE_SLT = "probe_slt"
LOGPROB_MEAN = "logprob_mean"


def optional_signal(signals: Mapping[str, float], name: str) -> float | None:
    """A named signal if present (None if not); NaN or infinity is InvalidInput, never routed on."""
    value = signals.get(name)
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInput(f"signal {name} must be finite, got {value}", field=f"signals.{name}")
    return value


def finite_signals(signals: Mapping[str, float]) -> dict[str, float]:
    """The signals that are finite numbers: how the cloud reads a logged record (the rest count as absent)."""
    return {name: float(value) for name, value in signals.items() if math.isfinite(float(value))}
