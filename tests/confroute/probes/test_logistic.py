from __future__ import annotations

import numpy as np
import pytest

from confroute.errors import InvalidInput
from confroute.probes.logistic import fit_logistic, sigmoid


def newton(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Reference: Newton's method on the same standardised objective, mapped back to raw features."""
    mu, sd = x.mean(0), x.std(0)
    z = np.hstack([(x - mu) / sd, np.ones((len(y), 1))])
    theta = np.zeros(z.shape[1])
    penalty = np.diag([l2] * (z.shape[1] - 1) + [0.0])
    for _ in range(50):
        p = sigmoid(z @ theta)
        grad = z.T @ (p - y) / len(y) + penalty @ theta
        hess = (z * (p * (1 - p))[:, None]).T @ z / len(y) + penalty
        theta -= np.linalg.solve(hess, grad)
    w = theta[:-1] / sd
    return w, float(theta[-1] - mu @ w)


def test_the_fit_matches_newtons_method_on_raw_features_of_any_scale() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 6)) * np.array([0.01, 1, 100, 5, 1e3, 0.5]) + np.array([3, -2, 500, 0, 1e4, 1])
    y = (((x - x.mean(0)) / x.std(0)) @ np.array([1, -1, 2, 0, 0.5, 0]) + rng.standard_normal(400) > 0.3)
    model = fit_logistic(x, y.astype(float), l2=0.05, tol=1e-9)
    weight, bias = newton(x, y.astype(float), 0.05)
    np.testing.assert_allclose(model.weight, weight, rtol=1e-5, atol=1e-9)
    assert model.bias == pytest.approx(bias, rel=1e-5)
    np.testing.assert_allclose(model.predict(x), sigmoid(x @ weight + bias), atol=1e-7)


def test_wide_features_and_constant_columns_fit_without_trouble() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 500))
    x[:, 7] = 4.2  # constant: standardised to 0, gets no weight
    y = (x[:, 3] > 0).astype(float)
    model = fit_logistic(x, y, l2=0.01)
    assert model.weight[7] == 0.0
    assert np.mean((model.predict(x) > 0.5) == y) == 1.0


@pytest.mark.parametrize(("x", "y", "l2"), [
    (np.zeros((3, 2)), [0, 1], 1.0), (np.zeros((2, 2)), [1, 1], 1.0), (np.zeros((2, 2)), [0, 2], 1.0),
    (np.array([[np.nan, 0], [0, 0]]), [0, 1], 1.0), (np.zeros((2, 2)), [0, 1], 0.0),
])
def test_bad_input_is_rejected(x: np.ndarray, y: list[int], l2: float) -> None:
    with pytest.raises(InvalidInput):
        fit_logistic(x, y, l2)
