from __future__ import annotations

import json
from pathlib import Path

import pytest

from confroute.bundle.store import load_bundle
from confroute.probes.cli import main
from confroute.probes.data import read_examples


def test_ladder_writes_the_training_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ladder.jsonl"
    assert main(["ladder", "--out", str(out), "--n", "24", "--seed", "5"]) == 0
    examples = read_examples(out)
    assert len(examples) == 24 and {e.kind for e in examples} == {"number"}
    assert "wrote 24 questions" in capsys.readouterr().err


def test_train_reports_progress_writes_the_bundle_and_show_prints_it(
        probe_bundle: Path, half_right_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = load_bundle(probe_bundle).version
    args = ["train", "--bundle", str(probe_bundle), "--data", str(half_right_data), "--label", "correct",
            "--max-new-tokens", "6", "--folds", "2", "--output", "tbg"]
    assert main([*args, "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "edge: 40/40" in err and "validation AUROC" in err and "dry run" in err
    assert load_bundle(probe_bundle).version == before
    assert main(args) == 0
    manifest = load_bundle(probe_bundle)
    assert manifest.version != before and set(manifest.probe.trained) == {"tbg"}
    assert manifest.probe.trained["tbg"]["data"]["file"] == half_right_data.name
    capsys.readouterr()
    assert main(["show", "--bundle", str(probe_bundle)]) == 0
    shown = capsys.readouterr().out
    assert "slt: untrained" in shown and '"label": "correct"' in shown and "layers 0..2" in shown


def test_bad_input_gives_a_clear_error_and_exit_code_2(probe_bundle: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "kind": "number", "answer": "many"}) + "\n", encoding="utf-8")
    assert main(["train", "--bundle", str(probe_bundle), "--data", str(bad), "--label", "correct"]) == 2
    assert "bad.jsonl:1: gold answer 'many' cannot be read" in capsys.readouterr().err
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"question": "q"}) + "\n", encoding="utf-8")
    assert main(["train", "--bundle", str(tmp_path / "nowhere"), "--data", str(good), "--label", "se"]) == 2
    assert "no model bundle" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--bundle", str(probe_bundle), "--data", str(bad), "--label", "dse"])
    assert exit_.value.code == 2
    assert "--strong-bundle" in capsys.readouterr().err
