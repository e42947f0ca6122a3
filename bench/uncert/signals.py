"""Confidence signals per item (higher = the edge answer is more likely right).

* fused head, one generation: ``max_prob`` (mean over generated tokens), ``entropy_mean`` / ``entropy_max``
  (negated), ``seq_logprob`` (mean token log-probability: minus log-perplexity);
* fused probes: ``probe_tbg`` / ``probe_slt`` trained on the training split to predict correctness,
  ``route_tbg`` / ``route_slt`` trained on the router's preference label
  (:func:`confroute.probes.labels.route_labels`: escalate only where the cloud model is right and the edge
  wrong, what a cascade gains from, as in the seed paper's pairwise labels, here from gold answers), and
  ``sep_tbg`` / ``sep_slt`` trained to predict binarised semantic entropy (Semantic Entropy Probes);
* semantic entropy over sampled answers: ``se5`` / ``se10`` (discrete) and ``se10_lik`` (likelihood-weighted),
  negated.

Probe scores on the training split are cross-fitted (each item scored by a probe that did not see it), so
the isotonic calibration fitted on them is not fooled by in-sample optimism.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.uncert.collect import EdgeRecord
from bench.uncert.items import Item
from confroute.probes.logistic import fit_logistic, sigmoid
from confroute.probes.selection import FeatureLayout, ProbeFit, select_probe
from confroute.uncertainty.semantic_entropy import best_split_threshold, cluster_answers, discrete_se, likelihood_se

FloatArray = npt.NDArray[np.float64]
HEAD_SIGNALS = ("max_prob", "entropy_mean", "entropy_max", "seq_logprob")
PROBE_SIGNALS = ("probe_tbg", "probe_slt", "route_tbg", "route_slt", "sep_tbg", "sep_slt")
SE_SIGNALS = ("se5", "se10", "se10_lik")


@dataclass(frozen=True)
class ProbeResult:
    """A probe's cross-fitted training scores, its test scores, and the fit chosen on the training split."""

    train: FloatArray
    test: FloatArray
    fit: ProbeFit | None
    weight: FloatArray  # over the bundle's whole probe feature vector (zeros outside the chosen layers)
    bias: float


def head_signals(records: Sequence[EdgeRecord]) -> dict[str, FloatArray]:
    return {
        "max_prob": np.array([r.mean_max_prob for r in records]),
        "entropy_mean": -np.array([r.mean_entropy for r in records]),
        "entropy_max": -np.array([r.max_entropy for r in records]),
        "seq_logprob": np.array([r.mean_logprob for r in records]),
    }


def semantic_entropies(items: Sequence[Item], records: Sequence[EdgeRecord]) -> dict[str, FloatArray]:
    """Discrete SE over the first 5 and all 10 samples, likelihood-weighted SE over 10 (not negated)."""
    out: dict[str, list[float]] = {name: [] for name in SE_SIGNALS}
    for item, record in zip(items, records, strict=True):
        texts = [s.text for s in record.samples]
        ids = cluster_answers(texts, item.example.kind, item.example.options)
        out["se5"].append(discrete_se(ids[:5]))
        out["se10"].append(discrete_se(ids[:10]))
        out["se10_lik"].append(likelihood_se(ids[:10], [s.logprob_sum for s in record.samples[:10]],
                                             [s.token_count for s in record.samples[:10]]))
    return {name: np.asarray(values) for name, values in out.items()}


def train_probe(train_x: npt.ArrayLike, train_y: npt.ArrayLike, test_x: npt.ArrayLike, layout: FeatureLayout,
                *, seed: int, folds: int = 5) -> ProbeResult:
    """Layers and L2 chosen on the training split; cross-fitted training scores; test scores from a probe
    refitted on the whole training split. Without two of each label, every score is 0.5 (no probe)."""
    x, y, tx = np.asarray(train_x, np.float64), np.asarray(train_y, np.int8), np.asarray(test_x, np.float64)
    if min(int(y.sum()), int(y.size - y.sum())) < 2 * folds:
        return ProbeResult(np.full(y.size, 0.5), np.full(tx.shape[0], 0.5), None, np.zeros(x.shape[1]), 0.0)
    fit = select_probe(x, y, layout, seed=seed)
    cols = layout.columns(*fit.layers)
    cross = np.empty(y.size)
    fold_of = _stratified_folds(y, folds, seed)
    for fold in range(folds):
        held = fold_of == fold
        model = fit_logistic(x[~held][:, cols], y[~held], fit.l2)
        cross[held] = model.predict(x[held][:, cols])
    final = fit_logistic(x[:, cols], y, fit.l2)
    weight = np.zeros(x.shape[1])
    weight[cols] = final.weight
    return ProbeResult(cross, final.predict(tx[:, cols]), fit, weight, final.bias)


def _stratified_folds(y: npt.NDArray[np.int8], folds: int, seed: int) -> npt.NDArray[np.intp]:
    fold_of = np.empty(y.size, dtype=np.intp)
    rng = np.random.default_rng(seed)
    for cls in (0, 1):
        members = rng.permutation(np.flatnonzero(y == cls))
        fold_of[members] = np.arange(members.size) % folds
    return fold_of


def sep_labels(se10_train: FloatArray) -> npt.NDArray[np.int8]:
    """Semantic Entropy Probes' labels: 1 for low SE (confident), 0 for high, split at the best threshold."""
    return (se10_train <= best_split_threshold(se10_train)).astype(np.int8)


def sigmoid_scores(features: npt.ArrayLike, weight: npt.ArrayLike, bias: float) -> FloatArray:
    """What the fused graph computes: ``sigmoid(features @ weight + bias)``."""
    return sigmoid(np.asarray(features, np.float64) @ np.asarray(weight, np.float64) + bias)
