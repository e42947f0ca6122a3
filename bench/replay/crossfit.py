"""K-fold cross-fitting: every query is scored by a router fitted on the other folds only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from confroute.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: (train index, test index) -> scores for the test rows, fitted on the train rows only.
FitScore = Callable[[IntArray, IntArray], FloatArray]


def fold_ids(n: int, k: int, seed: int) -> IntArray:
    """A fold id in [0, k) per row: a seeded permutation cut into k near-equal parts."""
    if not 2 <= k <= n:
        raise InvalidInput(f"need 2 <= k <= n for cross-fitting, got k={k}, n={n}", field="folds")
    folds = np.empty(n, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return folds


def cross_fit(n: int, folds: IntArray, fit_score: FitScore) -> FloatArray:
    """Out-of-fold scores: rows of fold f are scored by ``fit_score(rows not in f, rows in f)``."""
    scores = np.full(n, np.nan)
    for f in np.unique(folds):
        test = np.flatnonzero(folds == f)
        train = np.flatnonzero(folds != f)
        out = np.asarray(fit_score(train, test), dtype=np.float64)
        if out.shape != test.shape:
            raise InvalidInput(f"fold {f}: expected {test.size} scores, got shape {out.shape}", field="scores")
        scores[test] = out
    return scores
