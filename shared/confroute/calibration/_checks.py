"""Input validation shared by the calibration functions.

Every public function turns its arguments into clean numpy arrays here, so bad input (NaN, empty arrays,
mismatched lengths, values out of range) is rejected once, with ``InvalidInput`` naming the field.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from confroute.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def finite_1d(values: npt.ArrayLike, field: str) -> FloatArray:
    """A non-empty one-dimensional float64 array without NaN or infinities."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} must be a sequence of numbers", field=field) from exc
    if array.ndim != 1:
        raise InvalidInput(f"{field} must be one-dimensional, got shape {array.shape}", field=field)
    if array.size == 0:
        raise InvalidInput(f"{field} is empty", field=field)
    finite = np.isfinite(array)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise InvalidInput(f"{field} holds NaN or an infinite value (first at index {first})", field=field)
    return array


def unit_interval(values: npt.ArrayLike, field: str) -> FloatArray:
    """Like :func:`finite_1d`, and every value lies in [0, 1]."""
    array = finite_1d(values, field)
    if array.min() < 0.0 or array.max() > 1.0:
        raise InvalidInput(f"{field} must lie in [0, 1]", field=field)
    return array


def binary(values: npt.ArrayLike, field: str) -> BoolArray:
    """A boolean array from booleans or numbers that are all 0 or 1."""
    array = finite_1d(values, field)
    if not np.isin(array, (0.0, 1.0)).all():
        raise InvalidInput(f"{field} must hold only 0/1 or booleans", field=field)
    flags: BoolArray = array == 1.0
    return flags


def nonnegative_weights(values: npt.ArrayLike, field: str) -> FloatArray:
    """Finite weights >= 0 with a positive sum."""
    array = finite_1d(values, field)
    if array.min() < 0.0:
        raise InvalidInput(f"{field} must not be negative", field=field)
    if array.sum() <= 0.0:
        raise InvalidInput(f"{field} must have a positive sum", field=field)
    return array


def same_length(**arrays: npt.NDArray[Any]) -> None:
    """Reject arrays of different lengths, naming every field and its length."""
    lengths = {name: array.shape[0] for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise InvalidInput(f"lengths differ: {described}", field=next(iter(lengths)))


def fraction(value: float, field: str, *, open_low: bool = False, open_high: bool = False) -> float:
    """A finite scalar in [0, 1]; ``open_low``/``open_high`` exclude 0 or 1."""
    number = float(value)
    too_low = number <= 0.0 if open_low else number < 0.0
    too_high = number >= 1.0 if open_high else number > 1.0
    if not math.isfinite(number) or too_low or too_high:
        low, high = "(" if open_low else "[", ")" if open_high else "]"
        raise InvalidInput(f"{field} must lie in {low}0, 1{high}, got {value!r}", field=field)
    return number


def positive_int(value: int, field: str) -> int:
    """An integer >= 1 (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{field} must be an integer >= 1, got {value!r}", field=field)
    return value


def trapezoid(y: FloatArray, x: FloatArray) -> float:
    """Trapezoid rule; numpy renamed ``trapz`` to ``trapezoid`` in 2.0, so it is spelled out here."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
