"""Cross-fitting and the replay routers on small synthetic data."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from bench.replay.crossfit import cross_fit, fold_ids
from bench.replay.evaluate import RouterSpec, evaluate_router, out_of_fold_scores
from bench.replay.routers import (
    Scorer,
    fit_group_prior,
    fit_knn,
    fit_layer_ridge,
    fit_matrix_factorisation,
    fit_mlp,
    fit_ridge,
    fit_ridge_knn,
    fit_ridge_knn_states,
)
from confroute.calibration import auroc
from confroute.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]


def _synthetic(n: int = 400, d: int = 8, seed: int = 0) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Unit-vector queries; the weak model fails, and the strong one succeeds, where x . w is high."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    hard = x @ np.eye(d)[0] + 0.1 * rng.normal(size=n) > 0.2
    weak = np.where(hard, rng.random(n) < 0.05, rng.random(n) < 0.95).astype(float)
    strong = np.where(hard, rng.random(n) < 0.9, rng.random(n) < 0.95).astype(float)
    return x, weak, strong


def test_folds_are_balanced_seeded_and_cover_every_row() -> None:
    folds = fold_ids(103, 10, seed=3)
    assert set(np.bincount(folds)) <= {10, 11}
    np.testing.assert_array_equal(folds, fold_ids(103, 10, seed=3))
    assert not np.array_equal(folds, fold_ids(103, 10, seed=4))


def test_too_few_rows_for_the_folds_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        fold_ids(3, 5, seed=0)


def test_no_query_is_ever_scored_by_a_router_that_trained_on_it() -> None:
    n = 57
    x = np.arange(n, dtype=float)[:, None]  # the feature is the row id, so a scorer knows what it sees
    y = np.random.default_rng(0).normal(size=n)
    seen: list[set[int]] = []

    def spying_fit(xt: FloatArray, yt: FloatArray) -> Scorer:
        trained = {int(v) for v in xt[:, 0]}
        seen.append(trained)

        def score(q: FloatArray) -> FloatArray:
            asked = {int(v) for v in q[:, 0]}
            assert not asked & trained, "a query was scored by a router fitted on it"
            return np.zeros(len(q))

        return score

    out_of_fold_scores(RouterSpec("spy", "ids", spying_fit), x, y, fold_ids(n, 7, seed=1))
    assert len(seen) == 7
    assert all(len(s) in (n - n // 7, n - n // 7 - 1) for s in seen)


def test_a_memorising_router_gains_nothing_from_cross_fitting() -> None:
    """Labels are pure noise: a lookup table that scores rows it saw perfectly must look random here."""
    n = 400
    rng = np.random.default_rng(2)
    x = np.arange(n, dtype=float)[:, None]
    gain = rng.integers(0, 2, size=n).astype(float)

    def lookup(xt: FloatArray, yt: FloatArray) -> Scorer:
        table = dict(zip(xt[:, 0].astype(int).tolist(), yt.tolist(), strict=True))
        return lambda q: np.array([table.get(int(v), 0.5) for v in q[:, 0]])

    scores = cross_fit(n, fold_ids(n, 5, seed=0), lambda tr, te: lookup(x[tr], gain[tr])(x[te]))
    assert np.all(scores == 0.5)


@pytest.mark.parametrize(
    "fit",
    [fit_knn, fit_ridge, lambda x, y: fit_mlp(x, y, steps=300), lambda x, y: fit_matrix_factorisation(x, y, steps=300)],
    ids=["knn", "ridge", "mlp", "mf"],
)
def test_each_router_finds_the_hard_queries_out_of_fold(fit: object) -> None:
    x, weak, strong = _synthetic()
    spec = RouterSpec("r", "x", fit)  # type: ignore[arg-type]
    scores = out_of_fold_scores(spec, x, strong - weak, fold_ids(len(weak), 5, seed=0))
    assert auroc(scores, strong > weak) > 0.75


def test_a_learned_router_beats_random_on_the_routing_curve() -> None:
    x, weak, strong = _synthetic()
    result = evaluate_router(RouterSpec("ridge", "x", fit_ridge), x, weak, strong, k=5, seeds=(0, 1))
    assert result.apgr > 0.6
    assert result.cpt50 < 0.4


def test_ridge_shrinks_pure_noise_towards_the_mean() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 20)), rng.normal(size=200)
    predictions = fit_ridge(x, y)(rng.normal(size=(50, 20)))
    assert np.std(predictions) < 0.2 * np.std(y)


def test_group_prior_is_the_shrunk_group_mean() -> None:
    groups = np.array([[1.0, 0.0]] * 10 + [[0.0, 1.0]] * 10)
    y = np.array([1.0] * 10 + [0.0] * 10)
    score = fit_group_prior(groups, y, strength=10.0)(np.eye(2))
    np.testing.assert_allclose(score, [(10 + 5) / 20, (0 + 5) / 20])


def test_the_ensemble_averages_ridge_and_knn_on_the_embedding_columns() -> None:
    x, weak, strong = _synthetic()
    extra = np.random.default_rng(1).normal(size=(len(x), 2))
    features = np.hstack([x, extra])
    y = strong - weak
    q = features[:20]
    expected = 0.5 * (fit_ridge(features, y)(q) + fit_knn(x, y)(x[:20]))
    np.testing.assert_allclose(fit_ridge_knn(features, y, emb_dim=x.shape[1])(q), expected)


def test_the_layer_ridge_reads_the_block_that_predicts_on_the_training_rows() -> None:
    rng = np.random.default_rng(3)
    n, width = 200, 6
    signal = rng.normal(size=(n, width))
    y = signal @ rng.normal(size=width) + 0.1 * rng.normal(size=n)
    x = np.hstack([rng.normal(size=(n, width)), signal, rng.normal(size=(n, width))])  # layer 1 predicts
    score = fit_layer_ridge(x, y, n_layers=3)
    expected = fit_ridge(signal, y)(signal[:10])
    np.testing.assert_allclose(score(x[:10]), expected)


def test_the_states_ensemble_is_equal_thirds_of_its_three_parts() -> None:
    x, weak, strong = _synthetic()
    rng = np.random.default_rng(1)
    meta, states = rng.normal(size=(len(x), 2)), rng.normal(size=(len(x), 6))
    features, y = np.hstack([x, meta, states]), strong - weak
    base = x.shape[1] + 2
    expected = (fit_ridge(features[:, :base], y)(features[:20, :base]) + fit_knn(x, y)(x[:20])
                + fit_layer_ridge(states, y, 2)(states[:20])) / 3
    np.testing.assert_allclose(fit_ridge_knn_states(features, y, x.shape[1], base, 2)(features[:20]), expected)


@pytest.mark.parametrize("shape", [(80, 12), (12, 80)], ids=["more-rows", "more-columns"])
def test_ridge_is_the_closed_form_solution_at_its_penalty(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=shape), rng.normal(size=shape[0])
    xc, yc = x - x.mean(axis=0), y - y.mean()
    coef = np.linalg.solve(xc.T @ xc + 2.0 * np.eye(shape[1]), xc.T @ yc)
    q = rng.normal(size=(5, shape[1]))
    np.testing.assert_allclose(fit_ridge(x, y, grid=(2.0,))(q), (q - x.mean(axis=0)) @ coef + y.mean(), atol=1e-9)
