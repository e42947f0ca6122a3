"""A local LLM's hidden states as a second query representation next to the MiniLM sentence embedding.

Per query, one prefill of a confroute bundle (the chat template applied to the query as one user turn) with
``features=True``: the bundle's fused head then returns the residual stream of its probe layers at the last
prompt token (the TBG position the runtime's probe reads), concatenated layer after layer. This is the call
``confroute-probe train`` collects its features with (confroute.probes.features.collect), without decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from bench.replay.features import standardise
from confroute.bundle.store import load_bundle
from confroute.errors import InvalidInput

if TYPE_CHECKING:
    from confroute.engine import Engine

FloatArray = npt.NDArray[np.float64]
#: Longer prompts keep their last tokens (the TBG position is the end of the prompt).
MAX_PROMPT_TOKENS = 1024


class StateEmbedder(Protocol):
    """What the benchmark needs of a hidden-state source: an embedder whose columns are ``n_layers`` equal
    blocks, and a short ``label`` for its router row."""

    model_id: str
    n_layers: int
    label: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class HiddenStates:
    """An embedder (``model_id``, ``dim``, ``embed``) whose vectors are a bundle's TBG probe features, so that
    :class:`confroute.embeddings.cache.CachedEmbedder` caches them like sentence embeddings. The engine is
    loaded on the first :meth:`embed` only: a run whose features are all cached never loads the model."""

    def __init__(self, bundle: Path, label: str | None = None, threads: int = 1,
                 max_prompt_tokens: int = MAX_PROMPT_TOKENS) -> None:
        m = load_bundle(bundle, verify=False)
        self.bundle, self.threads, self.max_prompt_tokens = bundle, threads, max_prompt_tokens
        self.n_layers = m.probe.last_layer - m.probe.first_layer + 1
        self.label = label or m.model_id
        weights = "".join(m.files.get(name, "")[:8] for name in ("model.onnx", "model.onnx.data"))
        self.model_id = f"{m.model_id.replace('/', '_')}-tbg-L{m.probe.first_layer}-{m.probe.last_layer}-{weights}"
        self._dim = m.probe.feature_dim
        self._engine: Engine | None = None

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        from confroute.engine import Engine, RuntimeOptions, SamplingParams

        if self._engine is None:  # not spinning: the benchmark shares a small CPU
            self._engine = Engine(self.bundle, RuntimeOptions(intra_op_threads=self.threads, spin=False))
        engine, params = self._engine, SamplingParams(max_new_tokens=1, truncate_prompt=True)
        out = np.zeros((len(texts), self._dim), np.float32)
        for i, text in enumerate(texts):
            ids = engine.encode_chat([{"role": "user", "content": text}])[-self.max_prompt_tokens:]
            features = engine.prefill(ids, params, features=True).step.features
            assert features is not None  # features=True binds them
            out[i] = features
        return out


def layer_blocks(states: FloatArray, n_layers: int) -> FloatArray:
    """Each layer's block standardised per column, then scaled to unit rows: the residual stream has a few
    huge outlier dimensions that would otherwise dominate every distance and penalty. Uses no label."""
    if n_layers < 1 or states.shape[1] % n_layers:
        raise InvalidInput(f"{states.shape[1]} columns do not split into {n_layers} layers", field="states")
    blocks = []
    for block in np.split(states, n_layers, axis=1):
        z = standardise(block)
        blocks.append(z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12))
    return np.hstack(blocks)
