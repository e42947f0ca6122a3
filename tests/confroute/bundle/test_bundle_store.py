from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from confroute.bundle import load_bundle, store
from confroute.bundle import probe as probe_module
from confroute.bundle.manifest import GRAPH_VERSION
from confroute.bundle.probe import read_probe, write_probe
from confroute.bundle.store import needs_export, write_atomically
from confroute.errors import BundleCorrupt, BundleNotFound, ProbeShapeMismatch


def test_a_fresh_bundle_lists_every_file_with_its_sha256(tiny_bundle: Path) -> None:
    manifest = load_bundle(tiny_bundle)
    assert set(manifest.files) == {"model.onnx", "model.onnx.data", "probe.bin", "tokenizer.json",
                                   "chat_template.jinja"}
    assert manifest.probe.trained == {}
    assert manifest.quantization is None
    assert len(manifest.version) == 12


def test_a_tampered_file_is_reported_as_corrupt(tiny_bundle: Path) -> None:
    with open(tiny_bundle / "tokenizer.json", "a", encoding="utf-8") as f:
        f.write(" ")
    with pytest.raises(BundleCorrupt, match=r"tokenizer\.json does not match"):
        load_bundle(tiny_bundle)


def test_a_verified_bundle_is_not_rehashed_until_a_file_changes(tiny_bundle: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    load_bundle(tiny_bundle)
    hashed: list[str] = []
    real = store.sha256_file
    def counting(path: Path) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(store, "sha256_file", counting)
    load_bundle(tiny_bundle)
    assert hashed == []
    data = tiny_bundle / "probe.bin"
    data.write_bytes(b"\1" * data.stat().st_size)  # same size, new mtime, other content
    with pytest.raises(BundleCorrupt, match=r"probe\.bin does not match"):
        load_bundle(tiny_bundle)


def test_a_missing_folder_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFound, match="confroute-export"):
        load_bundle(tmp_path / "nothing")


def test_a_manifest_from_the_future_is_refused(tiny_bundle: Path) -> None:
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    data["format_version"] = 99
    (tiny_bundle / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleCorrupt, match="newer than this runtime"):
        load_bundle(tiny_bundle)


def _set_graph_version(bundle: Path, version: int | None) -> None:
    data = json.loads((bundle / "manifest.json").read_text())
    if version is None:
        del data["graph_version"]  # a manifest written before the field existed
    else:
        data["graph_version"] = version
    (bundle / "manifest.json").write_text(json.dumps(data))


def test_a_new_export_carries_the_current_graph_version(tiny_bundle: Path) -> None:
    manifest = load_bundle(tiny_bundle)
    assert manifest.graph_version == GRAPH_VERSION and not manifest.outdated
    assert not needs_export(tiny_bundle)


def test_an_older_graph_is_exported_again_unless_its_trained_probe_could_not_be_carried(tiny_bundle: Path) -> None:
    _set_graph_version(tiny_bundle, None)
    manifest = load_bundle(tiny_bundle, verify=False)
    assert manifest.graph_version == 1 and manifest.outdated
    assert needs_export(tiny_bundle)
    trained = write_probe(tiny_bundle, "tbg", np.ones(manifest.probe.feature_dim, np.float32), 0.0, {"labels": "t"})
    assert trained.outdated and not needs_export(tiny_bundle)  # a random tiny model: no source file to match
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    data["source"]["sha256"] = "ab" * 32  # from a file: a re-export carries the probe over
    (tiny_bundle / "manifest.json").write_text(json.dumps(data))
    assert needs_export(tiny_bundle)


def test_no_bundle_needs_an_export_and_a_broken_manifest_is_left_to_the_loader(tmp_path: Path) -> None:
    assert needs_export(tmp_path / "nothing")
    (tmp_path / "manifest.json").write_text("{")
    assert not needs_export(tmp_path)
    with pytest.raises(BundleCorrupt):
        load_bundle(tmp_path)


def test_writing_a_probe_changes_weights_manifest_and_content_version_not_the_build(tiny_bundle: Path) -> None:
    before = load_bundle(tiny_bundle)
    weight = np.linspace(-1, 1, before.probe.feature_dim, dtype=np.float32)
    after = write_probe(tiny_bundle, "tbg", weight, 0.25, {"labels": "test", "auroc": 0.7})
    weights, biases = read_probe(tiny_bundle, after)
    np.testing.assert_array_equal(weights[:, 0], weight)
    assert biases[0] == pytest.approx(0.25)
    assert not weights[:, 1].any()
    assert after.probe.is_trained("tbg") and not after.probe.is_trained("slt")
    assert after.version != before.version
    assert after.build_version == before.build_version  # policies and partitions of the build still apply
    assert before.probe_version == "untrained"
    assert after.probe_version == after.files["probe.bin"][:12]
    assert load_bundle(tiny_bundle) == after


def test_probe_weights_of_the_wrong_size_are_refused(tiny_bundle: Path) -> None:
    with pytest.raises(ProbeShapeMismatch, match="features"):
        write_probe(tiny_bundle, "tbg", np.zeros(3), 0.0, {})
    with pytest.raises(ProbeShapeMismatch, match="unknown probe output"):
        write_probe(tiny_bundle, "later", np.zeros(load_bundle(tiny_bundle).probe.feature_dim), 0.0, {})


def test_an_atomic_write_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    with pytest.raises(RuntimeError), write_atomically(dest) as staging:
        (staging / "model.onnx").write_bytes(b"half")
        raise RuntimeError("export failed")
    assert list(tmp_path.iterdir()) == []


def test_an_atomic_write_replaces_an_existing_bundle_only_when_complete(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    dest.mkdir()
    (dest / "old").write_text("old")
    with write_atomically(dest) as staging:
        (staging / "new").write_text("new")
        assert (dest / "old").exists()
    assert [p.name for p in dest.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def _interrupted_probe_update(bundle: Path, monkeypatch: pytest.MonkeyPatch, *, replaced: bool) -> np.ndarray:
    """Runs write_probe up to a kill after the pending manifest is written: just before its commit with the
    new probe file in place (``replaced``), or just before the probe file is replaced; returns the new weights."""
    dim = load_bundle(bundle).probe.feature_dim
    weight = np.full(dim, 0.5, dtype=np.float32)

    def killed(*_args: object) -> None:
        raise KeyboardInterrupt("killed")

    if replaced:
        monkeypatch.setattr(probe_module, "commit_pending", killed)
    else:
        real_replace = os.replace

        def replace_or_die(src: str, dst: str) -> None:
            if Path(dst).name != store.PENDING_MANIFEST:
                killed()
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace_or_die)
    with pytest.raises(KeyboardInterrupt):
        write_probe(bundle, "tbg", weight, 1.0, {"kind": "test"})
    monkeypatch.undo()
    assert (bundle / store.PENDING_MANIFEST).exists()
    return weight


def test_a_probe_update_killed_after_the_new_file_is_in_place_is_finished_by_the_next_load(
        tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weight = _interrupted_probe_update(tiny_bundle, monkeypatch, replaced=True)

    manifest = load_bundle(tiny_bundle)  # verifies: the new probe and the new manifest

    assert np.array_equal(read_probe(tiny_bundle, manifest)[0][:, 0], weight)
    assert "tbg" in manifest.probe.trained
    assert not (tiny_bundle / store.PENDING_MANIFEST).exists()


def test_a_probe_update_killed_before_the_new_file_is_in_place_leaves_the_old_probe(
        tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = load_bundle(tiny_bundle)
    _interrupted_probe_update(tiny_bundle, monkeypatch, replaced=False)

    assert load_bundle(tiny_bundle) == before
    assert not (tiny_bundle / store.PENDING_MANIFEST).exists()


def test_a_bundle_moved_aside_by_a_killed_replacement_is_put_back_when_loaded(tiny_bundle: Path) -> None:
    before = load_bundle(tiny_bundle)
    tiny_bundle.rename(tiny_bundle.with_name(f".{tiny_bundle.name}.old"))  # killed between the two renames

    assert load_bundle(tiny_bundle) == before


def test_the_next_write_clears_what_a_killed_write_left(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    (tmp_path / ".bundle.abc123.partial").mkdir()  # a kill -9 while staging
    (tmp_path / ".bundle.abc123.partial" / "model.onnx.data").write_bytes(b"\0" * 1024)

    with write_atomically(dest) as staging:
        (staging / "x").write_text("new")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
