"""The interface every sentence embedder offers (semantic-entropy clustering and query routers use it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to unit-length vectors: ``embed(texts)`` is a float32 ``[len(texts), dim]`` array whose rows
    have L2 norm 1, so a dot product is a cosine similarity."""

    @property
    def dim(self) -> int:
        """Width of one embedding."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embeds ``texts`` in order; an empty sequence gives a ``[0, dim]`` array."""
        ...
