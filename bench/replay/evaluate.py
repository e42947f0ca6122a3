"""Scores every router on one dataset with cross-fitting and turns the scores into RouteLLM metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.replay.crossfit import cross_fit, fold_ids
from bench.replay.routers import Scorer
from confroute.calibration import RoutingCurve, oracle_router_curve, random_router_curve, routing_curve

FloatArray = npt.NDArray[np.float64]
Fit = Callable[[FloatArray, FloatArray], Scorer]


@dataclass(frozen=True)
class RouterSpec:
    """A router: its name, the feature matrix it reads, how to fit it, and whether it reads the weak answer."""

    name: str
    features: str
    fit: Fit
    post: bool = False


@dataclass(frozen=True)
class RouterResult:
    name: str
    post: bool
    apgr: float
    cpt50: float
    cpt80: float
    apgr_sd: float
    cpt50_sd: float
    curve: RoutingCurve

    def to_json(self) -> dict[str, float | bool]:
        return {"apgr": self.apgr, "cpt50": self.cpt50, "cpt80": self.cpt80, "apgr_sd": self.apgr_sd,
                "cpt50_sd": self.cpt50_sd, "post_generation": self.post}


def out_of_fold_scores(spec: RouterSpec, x: FloatArray, target: FloatArray, folds: npt.NDArray[np.int64]) -> FloatArray:
    return cross_fit(len(target), folds, lambda tr, te: spec.fit(x[tr], target[tr])(x[te]))


def evaluate_router(spec: RouterSpec, x: FloatArray, weak: FloatArray, strong: FloatArray, k: int,
                    seeds: tuple[int, ...]) -> RouterResult:
    """Metrics averaged over fold seeds (the spread is the sd over seeds); the curve is the first seed's."""
    curves = [routing_curve(weak, strong, out_of_fold_scores(spec, x, strong - weak, fold_ids(len(weak), k, s)))
              for s in seeds]
    apgr = np.array([c.apgr() for c in curves])
    cpt50 = np.array([c.cpt(0.5) for c in curves])
    cpt80 = np.array([c.cpt(0.8) for c in curves])
    return RouterResult(spec.name, spec.post, float(apgr.mean()), float(cpt50.mean()), float(cpt80.mean()),
                        float(apgr.std()), float(cpt50.std()), curves[0])


def reference_results(weak: FloatArray, strong: FloatArray) -> list[RouterResult]:
    """Random (expected curve) and oracle rows."""
    out = []
    for name, curve in (("random", random_router_curve(weak, strong)), ("oracle", oracle_router_curve(weak, strong))):
        out.append(RouterResult(name, False, curve.apgr(), curve.cpt(0.5), curve.cpt(0.8), 0.0, 0.0, curve))
    return out
