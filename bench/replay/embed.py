"""Embedding a dataset's texts in fixed-size chunks, each cached on disk, so that an interrupted or
partial (``--quick``) run keeps what it computed and a later run reuses it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from confroute.embeddings.cache import CachedEmbedder

CHUNK = 500


def embed_chunked(embedder: CachedEmbedder, texts: Sequence[str], log: Callable[[str], None],
                  chunk: int = CHUNK) -> npt.NDArray[np.float64]:
    """Rows of unit embeddings (float64 for the router maths), in order; chunk i is texts[i*chunk:(i+1)*chunk]."""
    whole = embedder.path_for(texts)
    if whole.is_file():  # an earlier unchunked call embedded exactly this list
        return embedder.embed(texts).astype(np.float64)
    parts = []
    for start in range(0, len(texts), chunk):
        part = list(texts[start:start + chunk])
        if not embedder.path_for(part).is_file():
            log(f"embedding texts {start}..{start + len(part)} of {len(texts)}")
        parts.append(embedder.embed(part))
    if not parts:
        return np.zeros((0, embedder.dim))
    return np.concatenate(parts).astype(np.float64)
