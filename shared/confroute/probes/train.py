"""Training the bundle's probes end to end: collect features, label, select, write into the bundle.

    report = train_probes(engine, examples, TrainConfig(label="correct"), progress=print_progress)
    write_report(bundle_dir, report, data_source={"file": "ladder.jsonl", "sha256": "..."},
                 trained_at="2026-11-26T04:00:00Z")

``train_probes`` is pure with respect to the bundle (it only runs the engine); ``write_report`` writes
each fitted probe with :func:`confroute.bundle.probe.write_probe` (no torch, no re-export) and records
the provenance in the manifest under ``probe.trained[output]``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from confroute.bundle.probe import write_probe
from confroute.embeddings import Embedder
from confroute.engine import Engine
from confroute.errors import InvalidInput
from confroute.probes.data import Example
from confroute.probes.features import Collected, CollectOptions, collect, collect_answers, collect_samples
from confroute.probes.labels import (
    LabelKind,
    LabelSet,
    SeVariant,
    correctness_labels,
    dse_labels,
    edge_correct,
    route_labels,
    se_labels,
    semantic_entropies,
)
from confroute.probes.selection import DEFAULT_L2, FeatureLayout, ProbeFit, select_probe

ProbeOutput = Literal["tbg", "slt"]
GOLD_LABELS = ("correct", "route")  # labels read from gold answers: no sampling
Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What to train. ``samples`` answers per question feed semantic entropy (``se``/``dse`` labels)."""

    label: LabelKind = "correct"
    outputs: tuple[ProbeOutput, ...] = ("tbg", "slt")
    val_frac: float = 0.3
    seed: int = 0
    folds: int = 3
    l2_grid: tuple[float, ...] = DEFAULT_L2
    max_new_tokens: int = 32
    samples: int = 10
    temperature: float = 1.0
    top_p: float = 1.0
    se_variant: SeVariant = "discrete"
    tau: float = 0.0
    similarity: float = 0.9  # cosine similarity joining free-text answers (with an embedder)

    def collect_options(self) -> CollectOptions:
        n = 0 if self.label in GOLD_LABELS else self.samples
        return CollectOptions(self.max_new_tokens, n, self.temperature, self.top_p, self.seed)


@dataclasses.dataclass(frozen=True)
class TrainReport:
    """The fitted probes and everything the manifest's provenance records."""

    config: TrainConfig
    fits: Mapping[str, ProbeFit]
    labels: LabelSet
    examples: int
    collect_seconds: float
    generated_tokens: int
    strong_model: str | None
    embedder: str | None = None
    collected: Collected | None = None  # what the edge model produced (features, answers), for measurements


def train_probes(engine: Engine, examples: Sequence[Example], config: TrainConfig, *,
                 strong: Engine | None = None, embedder: Embedder | None = None,
                 say: Say | None = None, collected: Collected | None = None) -> TrainReport:
    """Collects features with ``engine`` (unless ``collected`` holds them for these examples, e.g. from an
    earlier run with the same collect options), labels them, and fits one probe per requested output."""
    _check(config, examples, strong)
    tell = say or (lambda _m: None)
    if collected is None:
        tell(f"generating with the edge model over {len(examples)} examples")
        collected = collect(engine, examples, config.collect_options(), _every(tell, len(examples), "edge"))
    elif len(collected.answers) != len(examples):
        raise InvalidInput(f"{len(collected.answers)} collected answers for {len(examples)} examples",
                           field="collected")
    labels = _labels(config, examples, collected, strong, embedder, tell)
    positives = int(labels.labels.sum())
    tell(f"labels ({config.label}): {positives} keep / {labels.labels.size - positives} escalate")
    probe = engine.manifest.probe
    layout = FeatureLayout(probe.first_layer, probe.last_layer, probe.feature_dim //
                           (probe.last_layer - probe.first_layer + 1))
    fits: dict[str, ProbeFit] = {}
    for output in config.outputs:
        features = collected.tbg if output == "tbg" else collected.slt
        fit = select_probe(features, labels.labels, layout, val_frac=config.val_frac, seed=config.seed,
                           folds=config.folds, l2_grid=config.l2_grid)
        tell(f"{output}: layers {fit.layers[0]}..{fit.layers[1]}, l2 {fit.l2:g}, cv AUROC {fit.cv_auroc:.3f}, "
             f"validation AUROC {fit.val_auroc:.3f} ({fit.n_train} train / {fit.n_val} validation)")
        fits[output] = fit
    strong_model = None if strong is None else f"{strong.manifest.model_id}@{strong.manifest.version}"
    embedder_name = None if embedder is None else str(getattr(embedder, "model_id", type(embedder).__name__))
    return TrainReport(config, fits, labels, len(examples), collected.seconds, collected.generated_tokens,
                       strong_model, embedder_name, collected)


def write_report(bundle: str | os.PathLike[str], report: TrainReport, *, data_source: Mapping[str, Any],
                 trained_at: str) -> None:
    """Writes every fitted probe into ``bundle`` with its provenance."""
    for output, fit in report.fits.items():
        write_probe(bundle, output, fit.weight.astype(np.float32), fit.bias,
                    provenance(report, fit, data_source, trained_at))


def provenance(report: TrainReport, fit: ProbeFit, data_source: Mapping[str, Any],
               trained_at: str) -> dict[str, Any]:
    c = report.config
    generation: dict[str, Any] = {"decoding": "greedy", "max_new_tokens": c.max_new_tokens}
    if c.label not in GOLD_LABELS:
        generation |= {"samples": c.samples, "temperature": c.temperature, "top_p": c.top_p,
                       "se_variant": c.se_variant, "seed": c.seed,
                       "clustering": "normalised final answer" if report.embedder is None
                       else f"free text by {report.embedder} embeddings, cosine >= {c.similarity}"}
    return {
        "label": c.label, **report.labels.detail,
        "data": {**data_source, "examples": report.examples, "train": fit.n_train, "validation": fit.n_val,
                 "keep_rate": float(report.labels.labels.mean())},
        "layers": list(fit.layers), "l2": fit.l2, "selection": f"{c.folds}-fold CV AUROC on train",
        "cv_auroc": round(fit.cv_auroc, 4), "val_auroc": round(fit.val_auroc, 4),
        "generation": generation, **({"strong_model": report.strong_model} if report.strong_model else {}),
        "trained_at": trained_at, "trainer": "confroute-probe",
    }


def _check(config: TrainConfig, examples: Sequence[Example], strong: Engine | None) -> None:
    if not config.outputs:
        raise InvalidInput("nothing to train: no probe output chosen", field="output")
    if config.label == "route" and strong is None and any(e.cloud_correct is None for e in examples):
        raise InvalidInput("route labels need the cloud's outcome per question: a cloud_correct field in the "
                           "data, or a strong model (--strong-bundle)", field="strong_bundle")
    if config.label not in GOLD_LABELS and config.samples < 2:
        raise InvalidInput(f"{config.label} labels need at least 2 samples per question", field="samples")
    if config.label == "dse" and strong is None:
        raise InvalidInput("dse labels need a strong model (--strong-bundle)", field="strong_bundle")


def _labels(config: TrainConfig, examples: Sequence[Example], collected: Collected, strong: Engine | None,
            embedder: Embedder | None, tell: Say) -> LabelSet:
    if config.label == "correct":
        return correctness_labels(examples, collected.answers)
    if config.label == "route":
        return _route_labels(examples, collected.answers, strong, config.max_new_tokens, tell)
    weak_se = semantic_entropies(examples, collected.samples, config.se_variant, embedder, config.similarity)
    if config.label == "se":
        return se_labels(weak_se)
    assert strong is not None
    tell(f"sampling the strong model ({strong.manifest.model_id}) over {len(examples)} examples")
    strong_samples = collect_samples(strong, examples, config.collect_options(),
                                     _every(tell, len(examples), "strong"))
    strong_se = semantic_entropies(examples, strong_samples, config.se_variant, embedder, config.similarity)
    return dse_labels(strong_se, weak_se, config.tau)


def _route_labels(examples: Sequence[Example], answers: Sequence[str], strong: Engine | None,
                  max_new_tokens: int, tell: Say) -> LabelSet:
    """The cloud's outcomes recorded in the data, else the strong model's greedy answers against gold."""
    edge = edge_correct(examples, answers)
    if strong is None:
        return route_labels(edge, [bool(e.cloud_correct) for e in examples])
    tell(f"answering with the strong model ({strong.manifest.model_id}) over {len(examples)} examples")
    cloud_answers = collect_answers(strong, examples, max_new_tokens, _every(tell, len(examples), "strong"))
    return route_labels(edge, edge_correct(examples, cloud_answers))


def _every(tell: Say, total: int, name: str) -> Callable[[int, int], None]:
    step = max(1, total // 10)

    def progress(done: int, _total: int) -> None:
        if done % step == 0 or done == total:
            tell(f"{name}: {done}/{total}")

    return progress
