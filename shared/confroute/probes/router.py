"""Training the router probe that ships with confroute: one recipe, one command.

    confroute-probe router --data ../shared/data

The recipe (:class:`RouterRecipe`): the arithmetic ladder and two multiple-choice sets of the data pack
(:mod:`confroute.probes.sets`), answered by the edge bundle (greedy); the label is ``route`` (0 where the edge
answer is wrong and the cloud's right, :func:`confroute.probes.labels.route_labels`), the cloud's outcomes
read from the recorded file shipped beside the probe (``default/cloud_outcomes.json``: the local cloud model's
greedy answers scored against gold, made once by ``confroute-probe cloud-outcomes``). Layers and L2 are
chosen by cross-validation on the training split (:mod:`confroute.probes.selection`); every number in the
probe's provenance (AUROC, APGR, CPT(50%), the routing operating points) is measured on the held-out split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from confroute.calibration import auroc, routing_curve
from confroute.engine import Engine
from confroute.errors import InvalidInput
from confroute.probes.data import Example
from confroute.probes.features import Collected, collect_answers
from confroute.probes.labels import edge_correct
from confroute.probes.logistic import sigmoid
from confroute.probes.selection import split as label_split
from confroute.probes.sets import MC_SETS, Item, load_items
from confroute.probes.shipped import SHIPPED_PACKAGE, ShippedProbe, from_full_weight
from confroute.probes.train import TrainConfig, TrainReport, provenance, train_probes

OUTCOMES_FILE = "default/cloud_outcomes.json"
Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class RouterRecipe:
    """Which questions, how many, and how they are split (time-boxed: a few minutes on 2 cores)."""

    n_ladder: int = 240
    n_mc: int = 60
    seed: int = 0
    val_frac: float = 0.3
    max_new_tokens: int = 32
    folds: int = 3


@dataclasses.dataclass(frozen=True)
class CloudOutcomes:
    """Whether the cloud model's greedy answer is right, per item key (``dataset/item_id``)."""

    model: str
    max_new_tokens: int
    correct: Mapping[str, bool]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "max_new_tokens": self.max_new_tokens, "correct": dict(self.correct)}


def item_key(item: Item) -> str:
    return f"{item.dataset}/{item.item_id}"


def recipe_items(data_dir: Path, recipe: RouterRecipe) -> list[Item]:
    return load_items(data_dir, recipe.n_ladder, recipe.n_mc, recipe.seed)


def read_outcomes(path: str | os.PathLike[str] | None = None) -> tuple[CloudOutcomes, str]:
    """The recorded cloud outcomes (default: the shipped file) and the file's sha256."""
    if path is None:
        text = resources.files(SHIPPED_PACKAGE).joinpath(OUTCOMES_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    record = json.loads(text)
    outcomes = CloudOutcomes(str(record["model"]), int(record["max_new_tokens"]),
                             {str(k): bool(v) for k, v in record["correct"].items()})
    return outcomes, hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_outcomes(strong: Engine, items: Sequence[Item], max_new_tokens: int,
                    progress: Callable[[int, int], None] | None = None) -> CloudOutcomes:
    """Runs the cloud model over ``items`` and scores its greedy answers against gold."""
    examples = [item.example for item in items]
    right = edge_correct(examples, collect_answers(strong, examples, max_new_tokens, progress))
    model = f"{strong.manifest.model_id}@{strong.manifest.version}"
    return CloudOutcomes(model, max_new_tokens, {item_key(i): bool(r) for i, r in zip(items, right, strict=True)})


def with_outcomes(items: Sequence[Item], outcomes: CloudOutcomes) -> list[Example]:
    missing = [item_key(i) for i in items if item_key(i) not in outcomes.correct]
    if missing:
        raise InvalidInput(f"{len(missing)} questions have no recorded cloud outcome (first: {missing[0]}); "
                           "record them with confroute-probe cloud-outcomes", field="outcomes")
    return [dataclasses.replace(i.example, cloud_correct=outcomes.correct[item_key(i)]) for i in items]


def train_router(engine: Engine, items: Sequence[Item], outcomes: CloudOutcomes, recipe: RouterRecipe,
                 say: Say | None = None, collected: Collected | None = None) -> TrainReport:
    """The route-label TBG probe of the recipe (``collected``: the edge's features, when already run)."""
    config = TrainConfig(label="route", outputs=("tbg",), val_frac=recipe.val_frac, seed=recipe.seed,
                         folds=recipe.folds, max_new_tokens=recipe.max_new_tokens)
    return train_probes(engine, with_outcomes(items, outcomes), config, say=say, collected=collected)


def held_out(report: TrainReport, items: Sequence[Item], outcomes: CloudOutcomes) -> dict[str, Any]:
    """The router on the validation split the selection never saw: AUROC against the route label, and the
    cascade's APGR / CPT(50%) for the pre score (the probe) and the post score (``exp(logprob_mean)``)."""
    assert report.collected is not None
    fit = report.fits["tbg"]
    labels = report.labels.labels
    _, val = label_split(labels, report.config.val_frac, report.config.seed)
    chosen = [items[i] for i in val]
    edge = edge_correct([i.example for i in chosen], [report.collected.answers[i] for i in val]).astype(np.float64)
    cloud = np.array([outcomes.correct[item_key(i)] for i in chosen], np.float64)
    pre = sigmoid(report.collected.tbg[val].astype(np.float64) @ fit.weight + fit.bias)
    post = np.exp(np.minimum(report.collected.logprob_mean[val], 0.0))
    out: dict[str, Any] = {"n": int(val.size), "edge_accuracy": round(float(edge.mean()), 4),
                           "cloud_accuracy": round(float(cloud.mean()), 4),
                           "auroc": round(float(auroc(pre, labels[val])), 4),
                           "datasets": {d: sum(i.dataset == d for i in chosen) for d in ("ladder", *MC_SETS)}}
    if cloud.mean() > edge.mean():  # a cascade curve needs a cloud that is better on the whole
        for name, score in (("pre", pre), ("post", post)):
            curve = routing_curve(edge, cloud, -score, n_bins=10)
            out[name] = {"apgr": round(curve.apgr(), 4), "cpt50": round(curve.cpt(0.5), 4)}
    out["operating_points"] = operating_points(pre, post, edge, cloud)
    return out


def operating_points(pre: npt.NDArray[np.float64], post: npt.NDArray[np.float64], edge: npt.NDArray[np.float64],
                     cloud: npt.NDArray[np.float64]) -> dict[str, dict[str, float]]:
    """Accuracy, cloud-call rate and share of the gap recovered at candidate thresholds of each mode."""
    points: dict[str, dict[str, float]] = {}
    for t in (0.3, 0.4, 0.5, 0.6, 0.7):
        points[f"pre@{t}"] = _point(pre < t, edge, cloud)
    for t in (0.3, 0.5, 0.7):
        points[f"post@{t}"] = _point(post < t, edge, cloud)
    for low, high in ((0.3, 0.7), (0.4, 0.8), (0.5, 0.8)):
        decided_late = (pre >= low) & (pre < high)
        points[f"hybrid@{low}-{high}"] = {**_point((pre < low) | (decided_late & (post < 0.5)), edge, cloud),
                                          "generated_first": round(float(decided_late.mean()), 4)}
    return points


def _point(escalate: npt.NDArray[np.bool_], edge: npt.NDArray[np.float64],
           cloud: npt.NDArray[np.float64]) -> dict[str, float]:
    quality = float(np.where(escalate, cloud, edge).mean())
    gap = float(cloud.mean() - edge.mean())
    return {"accuracy": round(quality, 4), "cloud_rate": round(float(escalate.mean()), 4),
            "pgr": round((quality - float(edge.mean())) / gap, 4) if gap else float("nan")}


def shipped_probe(report: TrainReport, engine: Engine, recipe: RouterRecipe, data_dir: Path,
                  outcomes: CloudOutcomes, outcomes_sha256: str, measured: Mapping[str, Any],
                  trained_at: str) -> ShippedProbe:
    """The trained probe with its provenance, ready to save as package data."""
    manifest = engine.manifest
    fit = report.fits["tbg"]
    sources = {"ladder": {"generator": "confroute.uncertainty.ladder", "n": recipe.n_ladder, "seed": recipe.seed}}
    for name, rel in MC_SETS.items():
        sources[name] = {"file": rel, "n": recipe.n_mc, "seed": recipe.seed,
                         "sha256": hashlib.sha256((data_dir / rel).read_bytes()).hexdigest()}
    data_source = {"recipe": dataclasses.asdict(recipe), "sets": sources,
                   "cloud_outcomes": {"file": OUTCOMES_FILE, "sha256": outcomes_sha256, "model": outcomes.model,
                                      "max_new_tokens": outcomes.max_new_tokens}}
    record = provenance(report, fit, data_source, trained_at)
    record |= {"trainer": "confroute-probe router", "held_out": dict(measured),
               "bundle": {"model_id": manifest.model_id, "version": manifest.version,
                          "graph_version": manifest.graph_version, "source_sha256": manifest.source.sha256,
                          "quantization": None if manifest.quantization is None
                          else dataclasses.asdict(manifest.quantization)}}
    return from_full_weight("tbg", manifest, fit.weight, fit.bias, fit.layers, record)
