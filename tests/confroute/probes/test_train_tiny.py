from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from confroute.engine import Engine, SamplingParams
from confroute.errors import InvalidInput
from confroute.probes.data import read_examples
from confroute.probes.labels import route_labels
from confroute.probes.train import TrainConfig, train_probes, write_report

FAST = TrainConfig(label="correct", max_new_tokens=6, l2_grid=(1.0, 0.01), folds=2)


def test_written_probes_score_in_the_graph_what_numpy_computes(probe_bundle: Path, half_right_data: Path) -> None:
    examples = read_examples(half_right_data)
    report = train_probes(Engine(probe_bundle), examples, FAST)
    assert report.labels.labels.tolist() == [1, 0] * 20
    write_report(probe_bundle, report, data_source={"file": half_right_data.name}, trained_at="2026-01-01T00:00:00Z")
    engine = Engine(probe_bundle)
    for example in examples[:5]:
        run = engine.start(engine.encode_chat(example.messages), SamplingParams(max_new_tokens=6), features=True)
        gen = run.result
        assert run.tbg_features is not None and run.slt_features is not None
        for output, features, score in (("tbg", run.tbg_features, gen.tbg), ("slt", run.slt_features, gen.slt)):
            fit = report.fits[output]
            expected = 1.0 / (1.0 + np.exp(-(features.astype(np.float64) @ fit.weight + fit.bias)))
            assert score == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_the_manifest_records_the_provenance(probe_bundle: Path, half_right_data: Path) -> None:
    report = train_probes(Engine(probe_bundle), read_examples(half_right_data),
                          TrainConfig(**{**FAST.__dict__, "outputs": ("slt",)}))
    write_report(probe_bundle, report, data_source={"file": "x.jsonl", "sha256": "ab"}, trained_at="T")
    trained = Engine(probe_bundle).manifest.probe.trained
    assert set(trained) == {"slt"}
    record = trained["slt"]
    assert record["label"] == "correct" and record["trained_at"] == "T" and record["trainer"] == "confroute-probe"
    assert record["data"] == {"file": "x.jsonl", "sha256": "ab", "examples": 40, "train": 28, "validation": 12,
                              "keep_rate": 0.5}
    first, last = record["layers"]
    assert 0 <= first <= last <= 2 and record["l2"] in (1.0, 0.01)
    assert 0.0 <= record["val_auroc"] <= 1.0 and "cv_auroc" in record


def test_se_and_dse_labels_sample_both_models(probe_bundle: Path, half_right_data: Path,
                                              tiny_bundles: dict[str, Path]) -> None:
    examples = read_examples(half_right_data)
    engine = Engine(probe_bundle)
    # at temperature 2 the tiny random model agrees with itself on some questions and not on others
    config = TrainConfig(label="se", samples=3, max_new_tokens=3, temperature=2.0, outputs=("tbg",),
                         l2_grid=(1.0,), folds=2)
    report = train_probes(engine, examples, config)
    assert 0 < report.labels.labels.mean() < 1
    assert report.labels.detail["se_threshold"] == pytest.approx(-(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3)))
    dse = TrainConfig(**{**config.__dict__, "label": "dse", "tau": 0.1})
    with pytest.raises(InvalidInput, match="strong model"):
        train_probes(engine, examples, dse)
    report = train_probes(engine, examples, dse, strong=Engine(tiny_bundles["qwen2"]))
    assert report.strong_model is not None and report.strong_model.startswith("tiny")
    assert report.labels.detail["tau"] == 0.1
    assert 0 < report.labels.labels.mean() < 1


def test_correct_labels_need_gold_answers(probe_bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "nogold.jsonl").write_text('{"question": "q"}\n{"question": "r"}\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="gold answer"):
        train_probes(Engine(probe_bundle), read_examples(tmp_path / "nogold.jsonl"), FAST)


class ParityEmbedder:
    """A fake embedder: texts of even length point one way, odd lengths the other."""

    model_id = "parity"
    dim = 2

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.array([[1.0, 0.0] if len(t) % 2 == 0 else [0.0, 1.0] for t in texts], dtype=np.float32)


def test_free_text_samples_can_be_clustered_by_an_embedder(probe_bundle: Path, half_right_data: Path) -> None:
    config = TrainConfig(label="se", samples=4, max_new_tokens=3, temperature=1.0, outputs=("slt",),
                         l2_grid=(1.0,), folds=2)
    report = train_probes(Engine(probe_bundle), read_examples(half_right_data), config, embedder=ParityEmbedder())
    assert report.embedder == "parity" and 0 < report.labels.labels.mean() < 1
    write_report(probe_bundle, report, data_source={"file": "d"}, trained_at="T")
    generation = Engine(probe_bundle).manifest.probe.trained["slt"]["generation"]
    assert generation["clustering"] == "free text by parity embeddings, cosine >= 0.9"
    assert generation["samples"] == 4


def test_route_labels_escalate_only_where_the_cloud_is_right_and_the_edge_wrong() -> None:
    labels = route_labels([True, True, False, False], [True, False, True, False])
    assert labels.labels.tolist() == [1, 1, 0, 1]
    assert labels.detail["edge_accuracy"] == 0.5 and labels.detail["cloud_accuracy"] == 0.5


def test_route_labels_read_recorded_cloud_outcomes_or_run_the_strong_model(
        probe_bundle: Path, half_right_data: Path, tmp_path: Path) -> None:
    examples = read_examples(half_right_data)
    config = TrainConfig(**{**FAST.__dict__, "label": "route", "outputs": ("tbg",)})
    with pytest.raises(InvalidInput, match="cloud_correct"):
        train_probes(Engine(probe_bundle), examples, config)
    # the cloud is right on every third question: the edge (right on even ones) loses only on odd ones of those
    recorded = tmp_path / "recorded.jsonl"
    lines = half_right_data.read_text("utf-8").splitlines()
    recorded.write_text("".join(json.dumps({**json.loads(line), "cloud_correct": i % 3 == 0}) + "\n"
                                for i, line in enumerate(lines)), "utf-8")
    report = train_probes(Engine(probe_bundle), read_examples(recorded), config)
    assert report.labels.labels.tolist() == [0 if i % 2 and i % 3 == 0 else 1 for i in range(40)]
    # a cloud that answers exactly as the edge does is never worth escalating to: no label 0 to learn from
    with pytest.raises(InvalidInput, match="only 0 example"):
        train_probes(Engine(probe_bundle), examples, config, strong=Engine(probe_bundle))
