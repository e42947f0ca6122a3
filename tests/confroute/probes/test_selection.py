from __future__ import annotations

import numpy as np
import pytest

from confroute.errors import InvalidInput
from confroute.probes.selection import FeatureLayout, select_probe, split


def test_every_contiguous_layer_range_is_a_candidate_shortest_first() -> None:
    layout = FeatureLayout(first=4, last=6, hidden=2)
    assert layout.ranges() == [(4, 4), (5, 5), (6, 6), (4, 5), (5, 6), (4, 6)]
    assert layout.columns(5, 6) == slice(2, 6)


def test_the_split_is_stratified_disjoint_and_seeded() -> None:
    labels = np.array([0] * 30 + [1] * 10, dtype=np.int8)
    train, val = split(labels, 0.25, seed=3)
    assert set(train.tolist()).isdisjoint(val.tolist()) and len(train) + len(val) == 40
    assert labels[val].sum() == 2 and (labels[val] == 0).sum() == 8
    assert np.array_equal(split(labels, 0.25, seed=3)[1], val)
    with pytest.raises(InvalidInput, match="at least 2 of each label"):
        split(np.array([0, 0, 0, 1], dtype=np.int8), 0.3, seed=0)
    with pytest.raises(InvalidInput):
        split(labels, 1.0, seed=0)


def test_selection_finds_the_informative_layer_and_zeroes_the_others() -> None:
    rng = np.random.default_rng(0)
    layout = FeatureLayout(first=10, last=13, hidden=8)
    n = 240
    x = rng.standard_normal((n, 32)) * 10
    labels = (rng.random(n) < 0.4).astype(np.int8)
    x[:, 16:24] += labels[:, None] * 10.0  # layer 12 carries the label
    fit = select_probe(x, labels, layout, val_frac=0.3, seed=1)
    assert fit.layers[0] <= 12 <= fit.layers[1]
    chosen = np.zeros(32, dtype=bool)
    chosen[layout.columns(*fit.layers)] = True
    assert np.all(fit.weight[~chosen] == 0)
    assert fit.val_auroc > 0.9 and fit.cv_auroc > 0.9
    assert fit.n_train + fit.n_val == n


def test_noise_gives_a_validation_auroc_near_chance() -> None:
    rng = np.random.default_rng(2)
    layout = FeatureLayout(first=0, last=1, hidden=16)
    x = rng.standard_normal((300, 32))
    labels = (rng.random(300) < 0.5).astype(np.int8)
    assert abs(select_probe(x, labels, layout, seed=0).val_auroc - 0.5) < 0.15


def test_features_of_the_wrong_width_are_rejected() -> None:
    with pytest.raises(InvalidInput, match=r"\[n, 32\]"):
        select_probe(np.zeros((10, 31)), np.zeros(10, dtype=np.int8), FeatureLayout(0, 1, 16))
