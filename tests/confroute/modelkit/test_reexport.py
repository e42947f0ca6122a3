"""Exporting over an existing bundle keeps its trained probes when they read the same hidden states."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from confroute.bundle import load_bundle
from confroute.bundle.manifest import SourceInfo
from confroute.bundle.probe import read_probe, write_probe
from confroute.modelkit.export import EDGE_INT8, ExportOptions, export_bundle
from confroute.modelkit.sources import LoadedSource
from confroute.modelkit.tiny import tiny_source

FILE_SOURCE = SourceInfo(kind="gguf", ref="model.gguf", sha256="ab" * 32)


def _source(info: SourceInfo = FILE_SOURCE) -> LoadedSource:
    return dataclasses.replace(tiny_source("llama"), info=info)


def _trained(dest: Path, source: LoadedSource, options: ExportOptions) -> np.ndarray:
    manifest = export_bundle(source, dest, options, lambda _m: None)
    weight = np.linspace(-1.0, 1.0, manifest.probe.feature_dim, dtype=np.float32)
    write_probe(dest, "slt", weight, 0.5, {"labels": "test"})
    return weight


def test_a_re_export_of_the_same_file_keeps_the_trained_probe(tmp_path: Path) -> None:
    said: list[str] = []
    weight = _trained(tmp_path / "b", _source(), ExportOptions())
    manifest = export_bundle(_source(), tmp_path / "b", ExportOptions(), said.append)
    assert manifest.probe.trained == {"slt": {"labels": "test"}} and not manifest.probe.is_trained("tbg")
    weights, biases = read_probe(tmp_path / "b", load_bundle(tmp_path / "b"))  # verified: hashes match
    np.testing.assert_array_equal(weights[:, 1], weight)
    assert biases[1] == 0.5 and not weights[:, 0].any()
    assert any("kept the trained probes (slt)" in line for line in said)


def test_other_weights_quantization_or_layers_start_untrained(tmp_path: Path) -> None:
    other_file = dataclasses.replace(FILE_SOURCE, sha256="cd" * 32)
    unknown_file = SourceInfo(kind="hf-folder", ref="folder")
    changes = [(_source(other_file), ExportOptions()), (_source(), ExportOptions(quantization=EDGE_INT8, parity=False)),
               (_source(), ExportOptions(probe_layers=(0, 1)))]
    for n, (source, options) in enumerate(changes):
        _trained(tmp_path / str(n), _source(), ExportOptions())
        assert export_bundle(source, tmp_path / str(n), options, lambda _m: None).probe.trained == {}
    _trained(tmp_path / "hf", _source(unknown_file), ExportOptions())
    assert export_bundle(_source(unknown_file), tmp_path / "hf", ExportOptions(), lambda _m: None).probe.trained == {}
