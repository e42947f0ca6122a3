"""Probe labels. Convention: **1 = keep the query on the edge** (the probe scores confidence, as the
runtime reads it: higher = the edge answer is more likely fine; see ``confroute.routing.signals``).

* ``correct`` - the edge model's greedy answer matches the gold answer (``answers.is_correct``).
* ``se`` - low semantic entropy of the edge model's sampled answers, binarised at the best split
  (Semantic Entropy Probes): 1 when ``SE <= threshold``.
* ``dse`` - the weak (edge) model wins under the paper's dSE rule (``dSE > tau``); ties are 0.
* ``route`` - the router's label: 0 only where escalating helps, i.e. the edge answer is wrong and the
  cloud's right (from gold answers here; a judge or user feedback give the same two bits). Where both are
  wrong, or both right, keeping the query on the edge loses nothing, so it is 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from confroute.embeddings import Embedder
from confroute.errors import InvalidInput
from confroute.probes.data import Example
from confroute.uncertainty.answers import is_correct
from confroute.uncertainty.sampling import Sample
from confroute.uncertainty.semantic_entropy import (
    best_split_threshold,
    cluster_answers,
    discrete_se,
    dse_label,
    likelihood_se,
)

LabelKind = Literal["correct", "se", "dse", "route"]
LABEL_KINDS: tuple[str, ...] = get_args(LabelKind)
SeVariant = Literal["discrete", "likelihood"]
Labels = npt.NDArray[np.int8]


@dataclasses.dataclass(frozen=True)
class LabelSet:
    """Labels (1 = keep on the edge) and how they were made (goes into the manifest's provenance)."""

    labels: Labels
    detail: dict[str, object]


def correctness_labels(examples: Sequence[Example], answers: Sequence[str]) -> LabelSet:
    labels = edge_correct(examples, answers).astype(np.int8)
    return LabelSet(labels, {"score": "P(the edge model's greedy answer is correct)"})


def edge_correct(examples: Sequence[Example], answers: Sequence[str]) -> npt.NDArray[np.bool_]:
    """Whether each greedy answer matches its example's gold answer (every example needs one)."""
    missing = [i for i, e in enumerate(examples) if e.answer is None]
    if missing:
        raise InvalidInput(f"these labels need a gold answer; example {missing[0] + 1} has none", field="answer")
    return np.array([is_correct(a, e.answer or "", e.kind, e.options)
                     for e, a in zip(examples, answers, strict=True)], bool)


def route_labels(edge_right: npt.ArrayLike, cloud_right: npt.ArrayLike) -> LabelSet:
    """1 (keep on the edge) unless escalating helps: the edge is wrong and the cloud right."""
    edge, cloud = np.asarray(edge_right, bool), np.asarray(cloud_right, bool)
    if edge.shape != cloud.shape:
        raise InvalidInput(f"{edge.size} edge outcomes but {cloud.size} cloud outcomes", field="cloud_correct")
    labels: Labels = (edge | ~cloud).astype(np.int8)
    return LabelSet(labels, {"score": "P(keeping the query on the edge loses nothing: the edge answer is right "
                                      "or the cloud's wrong)",
                             "edge_accuracy": round(float(edge.mean()), 4),
                             "cloud_accuracy": round(float(cloud.mean()), 4)})


def semantic_entropies(examples: Sequence[Example], samples: Sequence[Sequence[Sample]], variant: SeVariant,
                       embedder: Embedder | None = None, similarity: float = 0.9) -> npt.NDArray[np.float64]:
    """SE per example from its sampled answers (free text clustered by ``embedder`` when given)."""
    out = np.empty(len(examples))
    for i, (example, drawn) in enumerate(zip(examples, samples, strict=True)):
        if not drawn:
            raise InvalidInput("semantic entropy needs sampled answers (samples >= 2)", field="samples")
        ids = cluster_answers([s.text for s in drawn], example.kind, example.options, embedder=embedder,
                              threshold=similarity)
        out[i] = discrete_se(ids) if variant == "discrete" else likelihood_se(
            ids, [s.logprob_sum for s in drawn], [s.token_count for s in drawn])
    return out


def se_labels(se: npt.NDArray[np.float64]) -> LabelSet:
    threshold = best_split_threshold(se)
    labels = (se <= threshold).astype(np.int8)
    return LabelSet(labels, {"score": "P(low semantic entropy of the edge model)", "se_threshold": threshold,
                             "se_mean": float(se.mean())})


def dse_labels(se_strong: npt.NDArray[np.float64], se_weak: npt.NDArray[np.float64], tau: float) -> LabelSet:
    labels = np.array([dse_label(float(s), float(w), tau) == "weak" for s, w in zip(se_strong, se_weak,
                                                                                     strict=True)], np.int8)
    return LabelSet(labels, {"score": "P(the weak model wins: dSE > tau)", "tau": tau,
                             "se_weak_mean": float(se_weak.mean()), "se_strong_mean": float(se_strong.mean())})
