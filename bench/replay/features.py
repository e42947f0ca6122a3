"""Pre-generation features of a query: its sentence embedding, simple length/number counts, its group."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def length_features(texts: Sequence[str]) -> FloatArray:
    """log characters, log words, log count of numbers, share of digit characters."""
    rows = [(np.log1p(len(t)), np.log1p(len(t.split())), np.log1p(len(_NUMBER.findall(t))),
             sum(c.isdigit() for c in t) / max(len(t), 1)) for t in texts]
    return np.array(rows, dtype=np.float64).reshape(len(texts), 4)


def one_hot(group: IntArray, n_groups: int) -> FloatArray:
    out = np.zeros((group.size, n_groups))
    out[np.arange(group.size), group] = 1.0
    return out


def standardise(x: FloatArray) -> FloatArray:
    """Zero mean, unit variance per column. Uses no label, so fitting it on all rows leaks nothing."""
    out: FloatArray = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    return out
