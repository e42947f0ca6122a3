"""The hidden-state features of bench.replay.llm_features on a tiny real bundle, and their per-layer blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.replay.llm_features import HiddenStates, layer_blocks
from confroute.embeddings.cache import CachedEmbedder
from confroute.engine import Engine, SamplingParams
from confroute.errors import InvalidInput

QUERIES = ["What is two plus two?", "Write a haiku about routers.", "Sort [3, 1, 2] in Python."]


def test_the_states_are_the_probe_features_at_the_last_prompt_token(tiny_bundles: dict[str, Path]) -> None:
    states = HiddenStates(tiny_bundles["llama"], label="tiny")
    engine = Engine(tiny_bundles["llama"])
    probe = engine.manifest.probe
    assert (states.dim, states.n_layers) == (probe.feature_dim, probe.last_layer - probe.first_layer + 1)
    out = states.embed(QUERIES)
    assert out.shape == (3, states.dim) and out.dtype == np.float32
    for row, text in zip(out, QUERIES, strict=True):
        ids = engine.encode_chat([{"role": "user", "content": text}])
        expected = engine.prefill(ids, SamplingParams(max_new_tokens=1), features=True).step.features
        assert expected is not None
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-5)


def test_long_prompts_keep_their_last_tokens(tiny_bundles: dict[str, Path]) -> None:
    """The TBG position is the end of the prompt: a prompt cut to its tail still ends on the same tokens."""
    long = "word " * 400
    short = HiddenStates(tiny_bundles["llama"], max_prompt_tokens=64).embed([long])
    assert short.shape == (1, HiddenStates(tiny_bundles["llama"]).dim) and np.isfinite(short).all()


def test_the_states_cache_like_embeddings_under_an_id_naming_the_layers(tiny_bundles: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    states = HiddenStates(tiny_bundles["llama"])
    assert "-tbg-L" in states.model_id and "/" not in states.model_id
    cached = CachedEmbedder(states, tmp_path)
    first = cached.embed(QUERIES[:2])
    assert cached.path_for(QUERIES[:2]).is_file()
    np.testing.assert_array_equal(cached.embed(QUERIES[:2]), first)


def test_each_layer_block_is_standardised_and_unit_length() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(30, 12)) * np.array([1.0] * 5 + [500.0] + [1.0] * 6)  # one outlier dimension
    blocks = layer_blocks(raw, 3)
    assert blocks.shape == raw.shape
    for block in np.split(blocks, 3, axis=1):
        np.testing.assert_allclose(np.linalg.norm(block, axis=1), 1.0)
    # the outlier column no longer dominates its block
    assert np.abs(blocks[:, 5]).mean() < 2.0 * np.abs(blocks[:, 4]).mean()


@pytest.mark.parametrize("layers", [0, 5])
def test_columns_that_do_not_split_into_the_layers_are_invalid_input(layers: int) -> None:
    with pytest.raises(InvalidInput):
        layer_blocks(np.zeros((4, 12)), layers)
