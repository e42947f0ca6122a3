"""Canary rollout of a policy: which devices run the canary, and when to promote it or roll it back.

**Assignment.** A device is in the canary when ``canary_bucket(device_id, salt) < share``: the first
8 bytes of SHA-256(``salt`` NUL ``device_id``) read as a fraction in [0, 1). It is deterministic (the same
device stays in its arm across reconnects and servers), uniform, and salted with the canary's version so
that successive canaries do not always land on the same devices.

**Decision** (:func:`decide_canary`), over the labelled outcomes of canary and control devices in the same
window. Quality is the (inverse-propensity weighted) share of good answers; each arm contributes its
quality ``q`` and its Kish effective sample size ``n``. With the Agresti-Caffo adjustment
(``q~ = (q n + 1) / (n + 2)``, which keeps the interval sane near 0 and 1 and with few samples), the
difference ``d = q~_canary - q~_control`` has standard error
``se = sqrt(q~_c (1 - q~_c) / (n_c + 2) + q~_k (1 - q~_k) / (n_k + 2))`` and the one-sided bounds
``d -/+ z se`` (``z`` = 1.645: 95 % one-sided confidence). Then, in order:

1. either arm below ``min_samples`` effective samples: **wait**;
2. ``d - z se >= -tolerance`` (non-inferiority: the canary is at most ``tolerance`` worse, at confidence
   1 - alpha): **promote**;
3. ``d + z se < -tolerance`` (the canary is worse by more than the tolerance, at confidence 1 - alpha):
   **roll back**;
4. both arms past ``max_samples`` and still undecided: **roll back** (non-inferiority could not be shown);
5. otherwise **wait**.

Assumptions: labels are independent Bernoulli draws given the arm (the normal approximation needs a few
dozen labels per arm: ``min_samples``), the two arms see the same traffic mix (random assignment gives
that in expectation), and weights come from known propensities. Looking again after each batch inflates
the error rate of a fixed-sample test; ``z`` can be raised (e.g. 2.33) for frequent re-evaluation.
"""

from __future__ import annotations

import enum
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from confroute.calibration._checks import binary, fraction, nonnegative_weights, same_length
from confroute.calibration.ipw import effective_sample_size
from confroute.errors import InvalidInput

_BUCKET_SCALE = float(2**64)


def canary_bucket(device_id: str, salt: str) -> float:
    """A device's fixed position in [0, 1) for the canary salted with ``salt``."""
    digest = hashlib.sha256(salt.encode("utf-8") + b"\x00" + device_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _BUCKET_SCALE


def in_canary(device_id: str, share: float, salt: str) -> bool:
    """Whether the device runs the canary when ``share`` of the cohort does."""
    return share > 0.0 and canary_bucket(device_id, salt) < share


@dataclass(frozen=True)
class ArmQuality:
    """One arm's labelled outcomes: weighted share of good answers and Kish effective sample size."""

    quality: float
    effective_size: float

    def __post_init__(self) -> None:
        fraction(self.quality, "quality")
        if not (math.isfinite(self.effective_size) and self.effective_size >= 0):
            raise InvalidInput(f"effective_size must be >= 0, got {self.effective_size}", field="effective_size")

    @classmethod
    def from_counts(cls, good: int, total: int) -> ArmQuality:
        """Unweighted labels: ``good`` of ``total`` answers were right."""
        if not 0 <= good <= total:
            raise InvalidInput(f"need 0 <= good <= total, got {good} of {total}", field="good")
        return cls(good / total if total else 0.0, float(total))

    @classmethod
    def from_labels(cls, good: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> ArmQuality:
        """Per-outcome labels (1: good answer) and their inverse-propensity weights (None: all 1)."""
        labels = binary(good, "good").astype(np.float64)
        w = np.ones_like(labels) if weights is None else nonnegative_weights(weights, "weights")
        same_length(good=labels, weights=w)
        return cls(float(np.dot(labels, w) / w.sum()), effective_sample_size(w))


@dataclass(frozen=True)
class CanaryRule:
    """When a canary is judged: tolerance on quality, confidence, and sample sizes (effective)."""

    tolerance: float = 0.02
    z: float = 1.645
    min_samples: float = 200.0
    max_samples: float = 20_000.0

    def __post_init__(self) -> None:
        fraction(self.tolerance, "tolerance")
        if not (math.isfinite(self.z) and self.z > 0):
            raise InvalidInput(f"z must be > 0, got {self.z}", field="z")
        if not 1 <= self.min_samples <= self.max_samples:
            raise InvalidInput("need 1 <= min_samples <= max_samples", field="min_samples")


class CanaryVerdict(enum.Enum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    WAIT = "wait"


@dataclass(frozen=True)
class CanaryDecision:
    """The verdict, the adjusted difference in quality (canary - control) with its bounds, and why."""

    verdict: CanaryVerdict
    difference: float
    lower: float
    upper: float
    reason: str


def decide_canary(canary: ArmQuality, control: ArmQuality, rule: CanaryRule = CanaryRule()) -> CanaryDecision:
    """Promote, roll back or wait (see the module docstring for the statistics)."""
    qc, qk = _adjusted(canary), _adjusted(control)
    nc, nk = canary.effective_size, control.effective_size
    difference = qc - qk
    se = math.sqrt(qc * (1 - qc) / (nc + 2) + qk * (1 - qk) / (nk + 2))
    lower, upper = difference - rule.z * se, difference + rule.z * se
    sizes = f"n_canary={nc:.0f}, n_control={nk:.0f}"
    bounds = f"quality difference {difference:+.4f} in [{lower:+.4f}, {upper:+.4f}], tolerance {rule.tolerance}"

    def verdict(kind: CanaryVerdict, why: str) -> CanaryDecision:
        return CanaryDecision(kind, difference, lower, upper, f"{why}: {bounds}; {sizes}")

    if min(nc, nk) < rule.min_samples:
        return verdict(CanaryVerdict.WAIT, f"too few labelled outcomes (need {rule.min_samples:.0f} per arm)")
    if lower >= -rule.tolerance:
        return verdict(CanaryVerdict.PROMOTE, "canary no worse than control beyond the tolerance")
    if upper < -rule.tolerance:
        return verdict(CanaryVerdict.ROLLBACK, "canary worse than control beyond the tolerance")
    if min(nc, nk) >= rule.max_samples:
        return verdict(CanaryVerdict.ROLLBACK, "undecided after max_samples: non-inferiority not shown")
    return verdict(CanaryVerdict.WAIT, "undecided")


def _adjusted(arm: ArmQuality) -> float:
    return (arm.quality * arm.effective_size + 1.0) / (arm.effective_size + 2.0)
