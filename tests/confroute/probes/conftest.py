"""A tiny bundle whose probes read all three layers (so layer selection has ranges to choose from), and a
training set on which its greedy answers are right for every other question."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from confroute.bundle.manifest import SourceInfo
from confroute.bundle.store import load_bundle, write_manifest
from confroute.engine import Engine, SamplingParams
from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.tiny import tiny_source


@pytest.fixture(scope="session")
def _wide_probe_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("probe-bundle") / "bundle"
    export_bundle(tiny_source("llama"), dest, ExportOptions(probe_layers=(0, 2)), lambda _m: None)
    return dest


@pytest.fixture
def probe_bundle(_wide_probe_bundle: Path, tmp_path: Path) -> Path:
    """A fresh copy a test may write probes into."""
    return Path(shutil.copytree(_wide_probe_bundle, tmp_path / "bundle"))


@pytest.fixture
def sourced_bundle(probe_bundle: Path) -> Path:
    """The tiny bundle as if built from a source file with a sha256 (only such bundles take a shipped probe)."""
    manifest = load_bundle(probe_bundle, verify=False)
    write_manifest(probe_bundle, dataclasses.replace(manifest, source=SourceInfo("tiny-random", "t", "ab" * 32)))
    return probe_bundle


@pytest.fixture(scope="session")
def half_right_data(_wide_probe_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 text questions; the gold answer is the tiny model's own greedy answer for even ones."""
    engine = Engine(_wide_probe_bundle)
    path = tmp_path_factory.mktemp("data") / "half_right.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(40):
            question = f"question {i}: {'why' if i % 3 else 'how'} {i * 37 % 101}?"
            greedy = engine.chat([{"role": "user", "content": question}], SamplingParams(max_new_tokens=6)).text
            f.write(json.dumps({"question": question, "answer": greedy if i % 2 == 0 else "zebra",
                                "kind": "text"}) + "\n")
    return path
