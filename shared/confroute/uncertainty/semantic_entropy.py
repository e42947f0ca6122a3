"""Semantic entropy (Kuhn et al. 2023; Farquhar et al., Nature 2024) and the dSE preference labels of the
Confidence-Driven LLM Router (arXiv 2502.11021). Pure functions.

**Clustering.** N sampled answers are grouped by semantic equivalence into integer cluster ids
(``[0, 1, 0, 2, ...]``, numbered in order of first appearance):

* :func:`cluster_by_key` - equal normalised final answers (``answers.final_answer``) share a cluster; an
  unparseable answer (key ``None``) is a cluster of its own. For numbers, choices and short answers.
* :func:`cluster_by_embedding` - free text: an answer joins the first cluster whose *first* member has
  cosine similarity >= ``threshold`` with it (the greedy, order-dependent scheme of the reference code,
  with sentence embeddings standing in for bidirectional entailment; any :class:`Embedder`).
* :func:`cluster_by_judge` - the same greedy scheme with an equivalence judge ``judge(a, b) -> bool``
  (e.g. the cloud model), asked both ways: equivalent only when ``judge(a, b) and judge(b, a)``.

**Entropies** (natural log, so 0 <= SE <= log N):

* :func:`discrete_se` - cluster frequencies: ``p(c) = |c| / N``.
* :func:`likelihood_se` - cluster probability mass from the samples' likelihoods, as in the reference
  implementation (jlko/semantic_uncertainty, ``predictive_entropy_rao``): each sample's log-likelihood is
  **length-normalised** (mean log-probability per generated token; an empty answer counts as one token
  of log-probability ``logprob_sum``, i.e. 0), the samples' likelihoods are normalised to sum to one, a
  cluster's mass is the sum over its members (duplicates count each time they were drawn), and
  ``SE = -sum_c p(c) log p(c)``. Length normalisation keeps long answers from losing mass just for
  being long; with equal likelihoods this equals :func:`discrete_se`.

**dSE labels** for an edge (weak) / cloud (strong) pair: ``dSE = (SE_strong - SE_weak) / SE_strong``.
Following the paper, ``dSE > tau`` means the weak model is clearly *less* uncertain than the strong one:
the **weak model wins** (keep the query on the edge); otherwise the pair is a **tie**, which is the
escalate side of the binary label (the strong model is at least as certain, so nothing argues for
keeping the query local). Zero strong SE: ``dSE = 0`` when the weak SE is also 0 (both certain: a tie
unless ``tau < 0``) and ``-inf`` when it is positive (only the strong model is certain: a tie).

**SE labels** as in Semantic Entropy Probes (arXiv 2406.15927): :func:`best_split_threshold` picks the
threshold minimising the within-group squared error of "low" vs "high" SE (an exact 1-D two-means);
SE <= threshold is the low-SE (confident) class.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from confroute.embeddings import Embedder
from confroute.errors import InvalidInput
from confroute.uncertainty.answers import AnswerKind, final_answer

Judge = Callable[[str, str], bool]
DseLabel = Literal["weak", "tie"]


def cluster_by_key(keys: Sequence[Hashable | None]) -> npt.NDArray[np.int64]:
    """Cluster ids of answers with equal keys; each ``None`` key is a singleton."""
    ids: dict[Hashable, int] = {}
    out = np.empty(len(keys), dtype=np.int64)
    fresh = 0
    for i, key in enumerate(keys):
        if key is None:
            out[i], fresh = fresh, fresh + 1
        elif key in ids:
            out[i] = ids[key]
        else:
            ids[key] = out[i] = fresh
            fresh += 1
    return out


def cluster_by_embedding(texts: Sequence[str], embedder: Embedder, threshold: float = 0.9) -> npt.NDArray[np.int64]:
    """Greedy clustering of ``texts`` by cosine similarity of their embeddings (see the module docstring)."""
    if not -1.0 <= threshold <= 1.0:
        raise InvalidInput(f"threshold must be a cosine similarity in [-1, 1], got {threshold}", field="threshold")
    if not texts:
        return np.empty(0, dtype=np.int64)
    vectors = np.asarray(embedder.embed(list(texts)), dtype=np.float32)
    if vectors.shape[0] != len(texts) or not np.all(np.isfinite(vectors)):
        raise InvalidInput("the embedder returned the wrong number of rows or non-finite values", field="embedder")
    similarity = vectors @ vectors.T
    return _greedy(len(texts), lambda i, j: bool(similarity[i, j] >= threshold))


def cluster_by_judge(texts: Sequence[str], judge: Judge) -> npt.NDArray[np.int64]:
    """Greedy clustering where ``texts[i]`` and ``texts[j]`` are equivalent when the judge agrees both ways.

    Identical strings are equivalent without asking the judge (saves calls to a slow judge).
    """
    return _greedy(len(texts), lambda i, j: texts[i] == texts[j] or (judge(texts[i], texts[j])
                                                                      and judge(texts[j], texts[i])))


def cluster_answers(texts: Sequence[str], kind: AnswerKind, options: Sequence[str] = (), *,
                    embedder: Embedder | None = None, judge: Judge | None = None,
                    threshold: float = 0.9) -> npt.NDArray[np.int64]:
    """Cluster ids of generated answers: numbers and choices by their final answer; free text by the judge
    if given, else by embeddings if given, else by the normalised text."""
    if kind == "text" and judge is not None:
        return cluster_by_judge(texts, judge)
    if kind == "text" and embedder is not None:
        return cluster_by_embedding(texts, embedder, threshold)
    return cluster_by_key([final_answer(text, kind, options) for text in texts])


def _greedy(n: int, same: Callable[[int, int], bool]) -> npt.NDArray[np.int64]:
    out = np.empty(n, dtype=np.int64)
    heads: list[int] = []  # the first member of each cluster, compared with every later answer
    for i in range(n):
        match = next((c for c, head in enumerate(heads) if same(head, i)), None)
        if match is None:
            heads.append(i)
            match = len(heads) - 1
        out[i] = match
    return out


def discrete_se(cluster_ids: npt.ArrayLike) -> float:
    """Entropy of the cluster frequencies (nats): 0 when all answers agree, log N when none do."""
    ids = _cluster_ids(cluster_ids)
    _, counts = np.unique(ids, return_counts=True)
    return _entropy(counts / ids.size)


def likelihood_se(cluster_ids: npt.ArrayLike, logprob_sums: npt.ArrayLike,
                  token_counts: npt.ArrayLike) -> float:
    """Entropy of the clusters' length-normalised likelihood mass (nats; see the module docstring)."""
    ids = _cluster_ids(cluster_ids)
    logp = np.asarray(logprob_sums, dtype=np.float64).reshape(-1)
    counts = np.asarray(token_counts, dtype=np.float64).reshape(-1)
    if logp.shape != ids.shape or counts.shape != ids.shape:
        raise InvalidInput("cluster_ids, logprob_sums and token_counts must have the same length",
                           field="logprob_sums")
    if not np.all(np.isfinite(logp)) or np.any(logp > 1e-6):
        raise InvalidInput("logprob_sums must be finite log-probabilities (<= 0)", field="logprob_sums")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise InvalidInput("token_counts must be >= 0", field="token_counts")
    mean = np.minimum(logp, 0.0) / np.maximum(counts, 1.0)
    weights = np.exp(mean - mean.max())
    _, inverse = np.unique(ids, return_inverse=True)
    mass = np.bincount(inverse.reshape(-1), weights=weights)
    return _entropy(mass / mass.sum())


def dse(se_strong: float, se_weak: float) -> float:
    """``(SE_strong - SE_weak) / SE_strong``; 0 when both are 0, -inf when only the strong SE is 0."""
    for name, value in (("se_strong", se_strong), ("se_weak", se_weak)):
        if not math.isfinite(value) or value < 0:
            raise InvalidInput(f"{name} must be a finite entropy >= 0, got {value}", field=name)
    if se_strong == 0.0:
        return 0.0 if se_weak == 0.0 else -math.inf
    return (se_strong - se_weak) / se_strong


def dse_label(se_strong: float, se_weak: float, tau: float) -> DseLabel:
    """``"weak"`` when ``dSE > tau`` (the weak model wins: keep it on the edge), else ``"tie"``."""
    if not math.isfinite(tau):
        raise InvalidInput(f"tau must be finite, got {tau}", field="tau")
    return "weak" if dse(se_strong, se_weak) > tau else "tie"


def best_split_threshold(values: npt.ArrayLike) -> float:
    """The threshold splitting ``values`` into low (<= threshold) and high groups with the least
    within-group squared error. Ties in ``values`` are never split; with one distinct value the
    threshold is that value (everything is "low")."""
    x = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise InvalidInput("values must be a non-empty array of finite numbers", field="values")
    cuts = np.flatnonzero(np.diff(x) > 0) + 1  # split only between distinct values
    if cuts.size == 0:
        return float(x[0])
    csum, csq = np.cumsum(x), np.cumsum(x * x)
    left_n, right_n = cuts.astype(np.float64), float(x.size) - cuts
    left_sse = csq[cuts - 1] - csum[cuts - 1] ** 2 / left_n
    right_sum, right_sq = csum[-1] - csum[cuts - 1], csq[-1] - csq[cuts - 1]
    right_sse = right_sq - right_sum ** 2 / right_n
    best = int(cuts[int(np.argmin(left_sse + right_sse))])
    return float(x[best - 1])


def _cluster_ids(cluster_ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
    raw = np.asarray(cluster_ids)
    if raw.ndim != 1 or raw.size == 0:
        raise InvalidInput("cluster_ids must be a non-empty 1-D array", field="cluster_ids")
    if raw.dtype.kind == "f" and not np.all(np.isfinite(raw)):
        raise InvalidInput("cluster_ids must not hold NaN or inf", field="cluster_ids")
    if raw.dtype.kind not in "iuf" or (raw.dtype.kind == "f" and np.any(raw != np.round(raw))):
        raise InvalidInput("cluster_ids must be integers", field="cluster_ids")
    return raw.astype(np.int64)


def _entropy(p: npt.NDArray[np.float64]) -> float:
    p = p[p > 0]
    return float(max(0.0, -np.sum(p * np.log(p))))
