"""An on-disk cache of embedded text lists, so benchmark reruns skip the encoder.

One ``.npy`` per (model, exact list of texts): the key is a sha256 over the model id and every text,
length-prefixed so that no two different lists share a key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt


class _NamedEmbedder(Protocol):
    model_id: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


def texts_key(model_id: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(model_id.encode("utf-8") + b"\0")
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


class CachedEmbedder:
    """An :class:`~confroute.embeddings.protocol.Embedder` that memoises whole ``embed`` calls under ``folder``."""

    def __init__(self, inner: _NamedEmbedder, folder: Path) -> None:
        self._inner = inner
        self._folder = folder / inner.model_id
        self.model_id = inner.model_id

    @property
    def dim(self) -> int:
        return self._inner.dim

    def path_for(self, texts: Sequence[str]) -> Path:
        return self._folder / f"{texts_key(self.model_id, texts)}.npy"

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        path = self.path_for(texts)
        if path.is_file():
            cached = np.load(path)
            if cached.shape == (len(texts), self.dim) and cached.dtype == np.float32:
                result: npt.NDArray[np.float32] = cached
                return result
        vectors = self._inner.embed(texts)
        self._folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
        return vectors
