"""L2-regularised logistic regression in numpy, fitted by L-BFGS, returned on *raw* features.

The graph computes ``sigmoid(features @ w + b)`` on the raw residual stream, whose dimensions differ in
scale by orders of magnitude. Fitting is done on standardised features (zero mean, unit variance per
column; constant columns get weight 0) so that one L2 strength suits every column, and the
standardisation is then **folded** into the returned weights: ``w_raw = w / sd``, ``b_raw = b - mu @ w_raw``.

Objective (standardised space): ``mean(log(1 + exp(z)) - y z) + l2 / 2 * |w|^2`` with ``z = x w + b``; the
bias is not penalised. Strictly convex for ``l2 > 0``, so L-BFGS (memory 10, Armijo backtracking)
converges to the unique optimum; it stops when the gradient's max-norm is below ``tol``.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np
import numpy.typing as npt

from confroute.errors import InvalidInput

Floats = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class LogisticModel:
    """``P(y = 1 | x) = sigmoid(x @ weight + bias)`` on raw features."""

    weight: Floats
    bias: float
    iterations: int

    def logit(self, features: npt.ArrayLike) -> Floats:
        out: Floats = np.asarray(features, dtype=np.float64) @ self.weight + self.bias
        return out

    def predict(self, features: npt.ArrayLike) -> Floats:
        return sigmoid(self.logit(features))


def sigmoid(z: Floats) -> Floats:
    out: Floats = np.exp(-np.logaddexp(0.0, -z))
    return out


def fit_logistic(features: npt.ArrayLike, labels: npt.ArrayLike, l2: float, *, tol: float = 1e-6,
                 max_iter: int = 500) -> LogisticModel:
    """Fits the probe (see the module docstring). ``labels`` are 0/1 and must hold both classes."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    _check(x, y, l2)
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    constant = sd < 1e-12
    sd[constant] = 1.0
    z = (x - mu) / sd
    z[:, constant] = 0.0  # exactly: a constant column carries no information and gets weight 0
    theta, iterations = _lbfgs(z, y, l2, tol, max_iter)
    weight = theta[:-1] / sd
    return LogisticModel(weight=weight, bias=float(theta[-1] - mu @ weight), iterations=iterations)


def _check(x: Floats, y: Floats, l2: float) -> None:
    if x.ndim != 2 or x.shape[0] != y.size or x.shape[0] == 0:
        raise InvalidInput(f"features must be [n, d] with one label per row; got {x.shape} and {y.size} labels",
                           field="features")
    if not np.all(np.isfinite(x)):
        raise InvalidInput("features must be finite", field="features")
    if not np.all((y == 0) | (y == 1)) or y.min() == y.max():
        raise InvalidInput("labels must be 0/1 and hold both classes", field="labels")
    if not np.isfinite(l2) or l2 <= 0:
        raise InvalidInput(f"l2 must be > 0, got {l2}", field="l2")


def _loss_grad(z: Floats, y: Floats, l2: float, theta: Floats) -> tuple[float, Floats]:
    w, b = theta[:-1], theta[-1]
    logits = z @ w + b
    loss = float(np.mean(np.logaddexp(0.0, logits) - y * logits) + 0.5 * l2 * (w @ w))
    residual = (sigmoid(logits) - y) / y.size
    return loss, np.concatenate([z.T @ residual + l2 * w, [residual.sum()]])


def _lbfgs(z: Floats, y: Floats, l2: float, tol: float, max_iter: int, memory: int = 10) -> tuple[Floats, int]:
    theta = np.zeros(z.shape[1] + 1)
    prior = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    theta[-1] = np.log(prior / (1 - prior))  # start at the base rate
    loss, grad = _loss_grad(z, y, l2, theta)
    history: deque[tuple[Floats, Floats, float]] = deque(maxlen=memory)
    for iteration in range(1, max_iter + 1):
        if np.max(np.abs(grad)) < tol:
            return theta, iteration - 1
        direction = -_two_loop(grad, history)
        if direction @ grad >= 0:  # not a descent direction: restart from steepest descent
            history.clear()
            direction = -grad
        step, new_loss, new_grad = _backtrack(z, y, l2, theta, loss, grad, direction)
        s, g_diff = step * direction, new_grad - grad
        if (curvature := float(s @ g_diff)) > 1e-12:
            history.append((s, g_diff, 1.0 / curvature))
        theta, loss, grad = theta + s, new_loss, new_grad
    return theta, max_iter


def _two_loop(grad: Floats, history: deque[tuple[Floats, Floats, float]]) -> Floats:
    q = grad.copy()
    alphas = []
    for s, g_diff, rho in reversed(history):
        alpha = rho * (s @ q)
        q -= alpha * g_diff
        alphas.append(alpha)
    if history:
        s, g_diff, _ = history[-1]
        q *= (s @ g_diff) / (g_diff @ g_diff)
    for (s, g_diff, rho), alpha in zip(history, reversed(alphas), strict=True):
        q += (alpha - rho * (g_diff @ q)) * s
    return q


def _backtrack(z: Floats, y: Floats, l2: float, theta: Floats, loss: float, grad: Floats,
               direction: Floats) -> tuple[float, float, Floats]:
    step, slope = 1.0, float(direction @ grad)
    for _ in range(50):
        new_loss, new_grad = _loss_grad(z, y, l2, theta + step * direction)
        if new_loss <= loss + 1e-4 * step * slope:
            return step, new_loss, new_grad
        step *= 0.5
    return step, new_loss, new_grad
