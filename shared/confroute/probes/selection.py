"""Choosing the probe's layers and L2 strength, and measuring it on data it never saw.

The examples are split once, stratified by label, into train and validation (``val_frac``). On the
train part, every contiguous sub-range of the bundle's probe layers and every L2 strength of the grid
is scored by ``folds``-fold stratified cross-validation (mean AUROC); the best pair (ties: fewer
layers, then stronger L2) is refitted on all of train and scored once on validation. The validation
AUROC is therefore an honest held-out number for exactly the probe that is written (it is not
refitted on validation). Weights of layers outside the chosen range are 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from confroute.calibration.metrics import auroc
from confroute.errors import InvalidInput
from confroute.probes.logistic import LogisticModel, fit_logistic

DEFAULT_L2 = (100.0, 10.0, 1.0, 0.1, 0.01, 0.001)


@dataclasses.dataclass(frozen=True)
class FeatureLayout:
    """The bundle's probe features: layers ``first``..``last`` of width ``hidden`` each, concatenated."""

    first: int
    last: int
    hidden: int

    def columns(self, first: int, last: int) -> slice:
        return slice((first - self.first) * self.hidden, (last - self.first + 1) * self.hidden)

    def ranges(self) -> list[tuple[int, int]]:
        """Every contiguous sub-range, shortest first."""
        n = self.last - self.first + 1
        return [(self.first + start, self.first + start + width - 1)
                for width in range(1, n + 1) for start in range(n - width + 1)]


@dataclasses.dataclass(frozen=True)
class ProbeFit:
    """The chosen probe: its weight over the *whole* feature vector and what the choice was based on."""

    weight: npt.NDArray[np.float64]
    bias: float
    layers: tuple[int, int]
    l2: float
    cv_auroc: float
    val_auroc: float
    n_train: int
    n_val: int


def split(labels: npt.NDArray[np.int8], val_frac: float, seed: int) -> tuple[npt.NDArray[np.intp],
                                                                              npt.NDArray[np.intp]]:
    """Stratified train / validation indices; each class puts at least one example in each part."""
    if not 0 < val_frac < 1:
        raise InvalidInput(f"val_frac must be in (0, 1), got {val_frac}", field="val_frac")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == cls))
        if members.size < 2:
            raise InvalidInput(f"only {members.size} example(s) labelled {cls}: a probe needs at least 2 of "
                               "each label (more data, or another label kind)", field="labels")
        k = min(members.size - 1, max(1, round(val_frac * members.size)))
        val.append(members[:k])
        train.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def select_probe(features: npt.ArrayLike, labels: npt.ArrayLike, layout: FeatureLayout, *, val_frac: float = 0.3,
                 seed: int = 0, folds: int = 3, l2_grid: Sequence[float] = DEFAULT_L2) -> ProbeFit:
    """Splits, selects layers and L2 by cross-validation on train, and scores on validation."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int8).reshape(-1)
    if x.ndim != 2 or x.shape != (y.size, (layout.last - layout.first + 1) * layout.hidden):
        raise InvalidInput(f"features must be [n, {(layout.last - layout.first + 1) * layout.hidden}], "
                           f"got {x.shape}", field="features")
    train, val = split(y, val_frac, seed)
    fold_of = _folds(y[train], folds, seed)
    best: tuple[float, tuple[int, int], float] | None = None
    for layers in layout.ranges():
        cols = x[train][:, layout.columns(*layers)]
        for l2 in l2_grid:
            score = _cv_auroc(cols, y[train], fold_of, l2)
            if best is None or score > best[0] + 1e-12:
                best = (score, layers, l2)
    assert best is not None
    cv, layers, l2 = best
    model = fit_logistic(x[train][:, layout.columns(*layers)], y[train], l2)
    weight = np.zeros(x.shape[1])
    weight[layout.columns(*layers)] = model.weight
    val_auroc = auroc(x[val] @ weight + model.bias, y[val])
    return ProbeFit(weight, model.bias, layers, l2, cv, val_auroc, train.size, val.size)


def _folds(y: npt.NDArray[np.int8], folds: int, seed: int) -> npt.NDArray[np.intp]:
    if folds < 2:
        raise InvalidInput(f"folds must be >= 2, got {folds}", field="folds")
    fold_of = np.empty(y.size, dtype=np.intp)
    rng = np.random.default_rng(seed + 1)
    for cls in (0, 1):
        members = rng.permutation(np.flatnonzero(y == cls))
        fold_of[members] = np.arange(members.size) % folds
    return fold_of


def _cv_auroc(x: npt.NDArray[np.float64], y: npt.NDArray[np.int8], fold_of: npt.NDArray[np.intp],
              l2: float) -> float:
    scores = []
    for fold in np.unique(fold_of):
        held = fold_of == fold
        if len(set(y[~held].tolist())) < 2 or len(set(y[held].tolist())) < 2:
            continue  # too few of one label for this fold
        model: LogisticModel = fit_logistic(x[~held], y[~held], l2)
        scores.append(auroc(model.logit(x[held]), y[held]))
    return float(np.mean(scores)) if scores else 0.5
