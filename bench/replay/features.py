"""Pre-generation features of a query: its sentence embedding, simple length/number counts, its group."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_SENTENCE = re.compile(r"[.?!](?:\s|$)")
_FRACTION = re.compile(r"\d+\s*/\s*\d+")


def length_features(texts: Sequence[str]) -> FloatArray:
    """Size and number counts, rough proxies of how many steps a query takes (see :func:`_counts`)."""
    rows = [_counts(t) for t in texts]
    return np.array(rows, dtype=np.float64).reshape(len(texts), N_LENGTH_FEATURES)


N_LENGTH_FEATURES = 10


def _counts(t: str) -> tuple[float, ...]:
    """log characters, words, sentences and numbers; share of digits; percentages, fractions, decimals,
    money amounts; log10 of the largest number."""
    numbers = _NUMBER.findall(t)
    largest = max((float(n.replace(",", "")) for n in numbers), default=0.0)
    return (np.log1p(len(t)), np.log1p(len(t.split())), np.log1p(len(_SENTENCE.findall(t))),
            np.log1p(len(numbers)), sum(c.isdigit() for c in t) / max(len(t), 1), float(t.count("%")),
            float(len(_FRACTION.findall(t))), float(sum("." in n for n in numbers)), float(t.count("$")),
            np.log10(1.0 + largest))


def one_hot(group: IntArray, n_groups: int) -> FloatArray:
    out = np.zeros((group.size, n_groups))
    out[np.arange(group.size), group] = 1.0
    return out


def standardise(x: FloatArray) -> FloatArray:
    """Zero mean, unit variance per column. Uses no label, so fitting it on all rows leaks nothing."""
    out: FloatArray = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    return out
