"""Choosing the next token from logits: temperature and nucleus (top-p) sampling. Pure functions."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum())
    return result


def sample_token(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> tuple[int, float]:
    """Samples from softmax(logits / temperature) restricted to the top-p nucleus.

    Returns the token and its log-probability under the *untempered* model distribution (the quantity
    the confidence signals are defined on).
    """
    shifted = logits.astype(np.float64) - logits.max()
    with np.errstate(over="ignore"):  # a tiny temperature sends every logit below the max to -inf: probability 0
        scaled = log_softmax(shifted / temperature)
    probs = np.exp(scaled)
    if top_p < 1.0:
        order = np.argsort(-probs)
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
        nucleus = np.zeros_like(probs)
        nucleus[keep] = probs[keep]
        probs = nucleus
    probs /= probs.sum()
    token = int(rng.choice(probs.size, p=probs))
    return token, float(log_softmax(logits.astype(np.float64))[token])
