"""bench.uncertainty's pure parts: signal scoring, the cascade, probe cross-fitting, splits."""

from __future__ import annotations

import math

import numpy as np

from bench.uncert.evaluate import score_cascade, score_signal
from bench.uncert.items import Item, ladder_items, split
from bench.uncert.signals import sep_labels, train_probe
from confroute.probes.selection import FeatureLayout


def test_a_perfect_signal_scores_auroc_one_and_calibrates() -> None:
    rng = np.random.default_rng(0)
    correct = rng.random(400) < 0.4
    conf = correct + rng.normal(0, 0.01, 400)
    score = score_signal(conf[:200], correct[:200], conf[200:], correct[200:])
    assert score.auroc == 1.0
    assert score.ece < 0.02


def test_a_useless_signal_is_near_half() -> None:
    rng = np.random.default_rng(1)
    correct = rng.random(2000) < 0.5
    score = score_signal(rng.random(1000), correct[:1000], rng.random(1000), correct[1000:])
    assert abs(score.auroc - 0.5) < 0.05


def test_cascade_escalates_the_least_confident_first() -> None:
    edge = np.array([1, 1, 0, 0], float)
    cloud = np.array([1, 1, 1, 1], float)
    good = score_cascade([0.9, 0.8, 0.1, 0.2], edge, cloud)
    bad = score_cascade([0.1, 0.2, 0.9, 0.8], edge, cloud)
    assert good is not None and bad is not None
    assert good.apgr > bad.apgr
    assert good.cpt50 <= 0.25 + 1e-9


def test_no_cascade_when_the_cloud_is_not_better() -> None:
    assert score_cascade([0.5, 0.5], [1.0, 1.0], [1.0, 0.0]) is None


def test_probe_cross_fitting_scores_every_training_item_and_learns_a_linear_signal() -> None:
    rng = np.random.default_rng(2)
    layout = FeatureLayout(first=0, last=1, hidden=4)
    x = rng.normal(size=(160, 8))
    y = (x[:, 5] + 0.3 * rng.normal(size=160) > 0).astype(np.int8)
    result = train_probe(x[:120], y[:120], x[120:], layout, seed=0)
    assert result.fit is not None
    assert result.train.shape == (120,) and result.test.shape == (40,)
    assert np.all((result.train > 0) & (result.train < 1))
    test_y = y[120:].astype(bool)
    assert result.test[test_y].mean() > result.test[~test_y].mean() + 0.3
    graph = 1.0 / (1.0 + np.exp(-(x[120:] @ result.weight + result.bias)))
    assert np.allclose(graph, result.test)


def test_too_few_labels_gives_no_probe() -> None:
    layout = FeatureLayout(first=0, last=0, hidden=3)
    x = np.zeros((12, 3))
    y = np.array([1] * 11 + [0], np.int8)
    result = train_probe(x, y, x[:2], layout, seed=0)
    assert result.fit is None and np.all(result.test == 0.5)


def test_sep_labels_mark_low_entropy_as_confident() -> None:
    labels = sep_labels(np.array([0.0, 0.0, 0.1, 1.5, 1.6, 2.0]))
    assert labels.tolist() == [1, 1, 1, 0, 0, 0]


def test_split_is_stratified_and_disjoint() -> None:
    items: list[Item] = ladder_items(20, seed=0)
    train, test = split(items, 0.5, seed=0)
    assert not set(train) & set(test)
    assert sorted(train + test) == list(range(20))
    assert math.isclose(len(test), 10)
