"""Sentence embeddings: the :class:`Embedder` protocol and a torch-free all-MiniLM-L6-v2 implementation."""

from confroute.embeddings.protocol import Embedder

__all__ = ["Embedder"]
