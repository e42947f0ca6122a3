"""End to end: ``python -m bench.routing_replay --quick`` on a small synthetic RouteLLM-shaped data folder,
with a deterministic stand-in embedder (the real one is tested in tests/confroute/embeddings)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bench.replay.data import STRONG, WEAK
from bench.routing_replay import Config, main
from confroute.embeddings.cache import CachedEmbedder


class _HashEmbedder:
    model_id = "hash16"
    dim = 16

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:16], dtype=np.uint8) for t in texts]
        x = np.array(rows, dtype=np.float32).reshape(len(texts), 16) - 127.5
        unit: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        return unit


class _HashStates(_HashEmbedder):
    """A stand-in for an LLM's hidden states: two 8-column 'layers'."""

    model_id = "hash-states"
    n_layers = 2
    label = "hash"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _synthetic_data(root: Path, n: int = 40) -> None:
    rng = np.random.default_rng(0)

    def flag(p: float) -> str:
        return "True" if rng.random() < p else "False"

    gsm = "".join(f'q{i} has {i} apples,{flag(0.6)},{flag(0.9)},"{i} + 1 = {i + 1}\n#### {i + 1}",x\n'
                  for i in range(n))
    _write(root / "routellm/gsm8k/gsm8k_responses.csv",
           f"prompt,{WEAK},{STRONG},{WEAK}_response,{STRONG}_response\n" + gsm)
    for sub in ("algebra", "law"):
        rows = "".join(f"{sub} question {i},{flag(0.6)},{flag(0.8)}\n" for i in range(n // 2))
        _write(root / f"routellm/mmlu/responses/mmlu_{sub}.csv", f"prompt,{WEAK},{STRONG}\n" + rows)
    questions = [{"question_id": i, "category": "math" if i % 2 else "writing", "turns": [f"ask {i}", f"more {i}"]}
                 for i in range(12)]
    _write(root / "routellm/mt_bench/question.jsonl", "".join(json.dumps(q) + "\n" for q in questions))
    judgements = [{"question_id": i, "model": m, "turn": t, "score": int(rng.integers(1, 11))}
                  for i in range(12) for m in (WEAK, STRONG) for t in (1, 2)]
    _write(root / "routellm/mt_bench/judgements.jsonl", "".join(json.dumps(j) + "\n" for j in judgements))
    for name in ("gsm8k", "mmlu", "mt_bench"):
        _write(root / f"routellm/{name}/contaminated_prompts.jsonl", json.dumps({"eval_prompt": "none"}) + "\n")


@pytest.mark.slow
def test_quick_run_writes_table_json_and_curves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("CONFROUTE_CACHE_DIR", str(tmp_path / "cache"))  # the stand-in states are cached there
    _synthetic_data(tmp_path / "data")

    def make_embedder(name: str, config: Config) -> CachedEmbedder:
        return CachedEmbedder(_HashEmbedder(), tmp_path / "cache")

    out = tmp_path / "out"
    argv = ["--quick", "--folds", "3", "--data", str(tmp_path / "data"), "--json", str(out / "r.json"),
            "--png-dir", str(out)]
    assert main(argv, make_embedder, lambda config: _HashStates()) == 0
    doc = json.loads((out / "r.json").read_text())
    assert set(doc["datasets"]) == {"mt_bench", "gsm8k", "mmlu"}
    for name, result in doc["datasets"].items():
        assert {"apgr", "cpt50", "cpt80"} <= set(result["routers"]["knn"]), name
        assert (out / f"routing_replay_{name}.png").is_file()
    assert doc["datasets"]["gsm8k"]["routers"]["ridge answer-checks"]["post_generation"] is True
    assert {name for name, result in doc["datasets"].items() if "ridge+knn+hash states" in result["routers"]} \
        == {"mt_bench", "gsm8k"}
    assert "ridge hash states" in doc["datasets"]["gsm8k"]["routers"]
    printed = capsys.readouterr().out
    assert "other data" in printed and "POST ridge answer-checks" in printed
