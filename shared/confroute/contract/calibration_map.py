"""The calibration map: raw routing score -> P(edge answer correct), the one interpolation of the fleet.

A map is isotonic knots ``x`` (finite, strictly increasing raw scores) and values ``y`` (in [0, 1],
non-decreasing), read linearly between knots and held flat beyond them; an empty map takes the raw
score as calibrated (clipped to [0, 1]). The recalibration fits one (``confroute.calibration.fit_isotonic``),
a policy carries it to the device, and the device (``confroute.routing.post_score``), the cloud's policy
maker and its estimates all read it through :meth:`CalibrationMap.__call__`, so a threshold chosen in the
cloud is compared with the same number on the device.

A map is validated when it is built (``InvalidPolicy``, whose ``field`` is the path in a policy such as
``calibration.x[1]``), so no invalid map exists, whether it came from the wire or from a fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from confroute.errors import InvalidInput, InvalidPolicy
from confroute.v1 import fleet_pb2

FloatArray = npt.NDArray[np.float64]
FIELD = "calibration"  # the map's field in a policy: error fields are paths under it


@dataclass(frozen=True)
class CalibrationMap:
    """An isotonic map from raw score to P(correct), linear between knots. Empty: already calibrated."""

    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            name = f"{FIELD}.y"
            raise InvalidPolicy(f"{name} has {len(self.y)} values for {len(self.x)} knots", field=name)
        _require_increasing(self.x, f"{FIELD}.x", strict=True)
        for i, value in enumerate(self.y):
            if not 0.0 <= value <= 1.0:
                name = f"{FIELD}.y[{i}]"
                raise InvalidPolicy(f"{name} must be in [0, 1], got {value}", field=name)
        _require_increasing(self.y, f"{FIELD}.y", strict=False)

    @overload
    def __call__(self, raw: float) -> float: ...

    @overload
    def __call__(self, raw: npt.NDArray[Any] | Sequence[float]) -> FloatArray: ...

    def __call__(self, raw: float | npt.NDArray[Any] | Sequence[float]) -> float | FloatArray:
        """The calibrated confidence of one raw score (a float) or of each of an array of them.

        Non-decreasing in the raw score and within [0, 1]; NaN or infinity is ``InvalidInput``.
        """
        if isinstance(raw, (int, float, np.integer, np.floating)):
            if not math.isfinite(float(raw)):
                raise InvalidInput(f"a raw score must be finite, got {raw}", field="scores")
            return float(self._interpolate(np.float64(raw)))
        values = np.asarray(raw, dtype=np.float64)
        if values.ndim != 1 or not np.all(np.isfinite(values)):
            raise InvalidInput("raw scores must be a 1-d array of finite numbers", field="scores")
        mapped: FloatArray = self._interpolate(values)
        return mapped

    def _interpolate(self, values: Any) -> Any:
        """The one interpolation: knots read linearly, flat beyond them, clipped to [0, 1]."""
        mapped = np.interp(values, self.x, self.y) if self.x else values
        return np.clip(mapped, 0.0, 1.0)

    def to_pb(self) -> fleet_pb2.CalibrationMap:
        return fleet_pb2.CalibrationMap(x=self.x, y=self.y)

    @classmethod
    def from_pb(cls, pb: fleet_pb2.CalibrationMap) -> CalibrationMap:
        """The map a policy carries; the checks of the constructor apply."""
        return cls(x=tuple(pb.x), y=tuple(pb.y))


def _require_increasing(values: tuple[float, ...], field: str, *, strict: bool) -> None:
    """Finite values, each above (strict) or at least (not strict) the one before."""
    for i, value in enumerate(values):
        if not math.isfinite(value):
            raise InvalidPolicy(f"{field}[{i}] must be finite, got {value}", field=f"{field}[{i}]")
        if i and (value <= values[i - 1] if strict else value < values[i - 1]):
            order = "strictly increasing" if strict else "non-decreasing"
            raise InvalidPolicy(f"{field} must be {order} (at index {i})", field=f"{field}[{i}]")
