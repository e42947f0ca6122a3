"""Which routers run on which dataset, and the feature matrices they read."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bench.replay.data import ReplayData
from bench.replay.evaluate import RouterSpec
from bench.replay.features import N_LENGTH_FEATURES, length_features, one_hot, standardise
from bench.replay.post import answer_features
from bench.replay.routers import (
    fit_group_prior,
    fit_knn,
    fit_layer_ridge,
    fit_matrix_factorisation,
    fit_mlp,
    fit_ridge,
    fit_ridge_knn,
    fit_ridge_knn_states,
)

FloatArray = npt.NDArray[np.float64]


def feature_sets(data: ReplayData, prompt_emb: FloatArray, states: FloatArray | None = None) -> dict[str, FloatArray]:
    """Label-free features (standardising over all rows leaks no outcome). The post-generation set reads
    checks of the weak answer, not its embedding (embedding 1,300 long answers costs more than it adds).
    ``states`` (an LLM's per-layer hidden states, see bench.replay.llm_features) follow the emb+meta columns."""
    meta = standardise(length_features(data.prompts))
    groups = one_hot(data.group, len(data.group_names))
    sets = {"emb": prompt_emb, "group": groups, "emb+meta": np.hstack([prompt_emb, meta, groups])}
    if states is not None:
        sets["states"] = states
        sets["emb+meta+states"] = np.hstack([sets["emb+meta"], states])
    if data.weak_answer is not None:
        checks = standardise(answer_features(data.weak_answer))
        sets["post"] = np.hstack([prompt_emb, meta, checks])
        sets["post-checks"] = np.hstack([checks, meta])
    return sets


def router_specs(data: ReplayData, seed: int, emb_dim: int, states: tuple[str, int] | None = None) -> list[RouterSpec]:
    """Pre-generation routers (all read only the query), then POST routers where the weak answer is known.
    ``states`` names the LLM whose hidden states follow the emb+meta columns, and its number of layers."""
    specs = [
        RouterSpec("knn", "emb", lambda x, y: fit_knn(x, y)),
        RouterSpec("mlp", "emb", lambda x, y: fit_mlp(x, y, seed=seed)),
        RouterSpec("mf (RouteLLM)", "emb", lambda x, y: fit_matrix_factorisation(x, y, seed=seed)),
        RouterSpec("ridge emb+len+group", "emb+meta", fit_ridge),
        RouterSpec("ridge+knn ensemble", "emb+meta", lambda x, y: fit_ridge_knn(x, y, emb_dim)),
    ]
    if states is not None:
        base_dim = emb_dim + N_LENGTH_FEATURES + len(data.group_names)
        name, layers = states
        specs.append(RouterSpec(f"ridge {name} states", "states", lambda x, y: fit_layer_ridge(x, y, layers)))
        specs.append(RouterSpec(f"ridge+knn+{name} states", "emb+meta+states",
                                lambda x, y: fit_ridge_knn_states(x, y, emb_dim, base_dim, layers)))
    if len(data.group_names) > 1:
        specs.append(RouterSpec("group prior", "group", fit_group_prior))
    if data.weak_answer is not None:
        specs.append(RouterSpec("ridge answer-checks", "post-checks", fit_ridge, post=True))
        specs.append(RouterSpec("ridge answer-checks+prompt", "post", fit_ridge, post=True))
    return specs
