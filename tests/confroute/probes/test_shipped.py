"""The shipped router probe: saved as package data, written into a bundle it fits, never over a trained one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from confroute.bundle.probe import write_probe
from confroute.bundle.store import load_bundle
from confroute.engine import Engine, SamplingParams
from confroute.errors import InvalidInput, ProbeShapeMismatch
from confroute.probes.shipped import ShippedProbe, from_full_weight, install_shipped, load_shipped, save_shipped


def _probe(bundle: Path, layers: tuple[int, int] = (1, 2)) -> ShippedProbe:
    manifest = load_bundle(bundle, verify=False)
    hidden = manifest.probe.feature_dim // 3
    weight = np.zeros(manifest.probe.feature_dim, np.float32)
    weight[layers[0] * hidden:(layers[1] + 1) * hidden] = np.random.default_rng(0).normal(
        0, 0.05, (layers[1] - layers[0] + 1) * hidden)
    return from_full_weight("tbg", manifest, weight, 0.25, layers, {"label": "route"})


def test_a_saved_probe_loads_back_with_the_same_weights(sourced_bundle: Path, tmp_path: Path) -> None:
    probe = _probe(sourced_bundle)
    save_shipped(tmp_path / "p.json", probe)
    loaded = load_shipped(tmp_path / "p.json")
    assert np.array_equal(loaded.full_weight(), probe.full_weight())
    assert loaded.layers == (1, 2) and loaded.bias == 0.25 and loaded.provenance == {"label": "route"}
    assert loaded.weight.size == 2 * loaded.hidden  # only the chosen layers are kept


def test_the_installed_probe_scores_in_the_graph_what_numpy_computes(sourced_bundle: Path) -> None:
    probe = _probe(sourced_bundle)
    assert install_shipped(sourced_bundle, probe).startswith("wrote the shipped router probe")
    engine = Engine(sourced_bundle)
    assert engine.manifest.probe.trained["tbg"]["label"] == "route"
    assert "sha256" in engine.manifest.probe.trained["tbg"]["shipped"]
    run = engine.start(engine.encode_chat([{"role": "user", "content": "hi"}]), SamplingParams(max_new_tokens=2),
                       features=True)
    gen = run.result
    assert run.tbg_features is not None and gen.tbg is not None
    expected = 1 / (1 + np.exp(-(run.tbg_features.astype(np.float64) @ probe.full_weight() + probe.bias)))
    assert gen.tbg == pytest.approx(float(expected), rel=1e-4, abs=1e-6)


def test_a_bundle_keeps_its_own_trained_probe(sourced_bundle: Path) -> None:
    dim = load_bundle(sourced_bundle, verify=False).probe.feature_dim
    write_probe(sourced_bundle, "tbg", np.ones(dim, np.float32) * 1e-3, 0.0, {"label": "mine"})
    assert install_shipped(sourced_bundle, _probe(sourced_bundle)) == "kept the bundle's own trained tbg probe"
    assert load_bundle(sourced_bundle).probe.trained["tbg"] == {"label": "mine"}


def test_a_probe_for_other_hidden_states_is_not_installed(sourced_bundle: Path, probe_bundle: Path) -> None:
    other = dataclasses.replace(_probe(sourced_bundle), source_sha256="cd" * 32)
    assert "another source" in install_shipped(sourced_bundle, other)
    narrower = dataclasses.replace(_probe(sourced_bundle), probe_layers=(1, 2))
    assert "reads layers 0..2" in install_shipped(sourced_bundle, narrower)
    assert load_bundle(sourced_bundle).probe.trained == {}


def test_bad_shipped_files_are_refused(sourced_bundle: Path, tmp_path: Path) -> None:
    record = _probe(sourced_bundle).to_json()
    with pytest.raises(InvalidInput, match="not a shipped probe"):
        ShippedProbe.from_json({**record, "format": "x"})
    with pytest.raises(ProbeShapeMismatch, match="weights for layers"):
        ShippedProbe.from_json({**record, "layers": [0, 2]})
    manifest = load_bundle(sourced_bundle, verify=False)
    with pytest.raises(ProbeShapeMismatch, match="zero outside"):
        from_full_weight("tbg", manifest, np.ones(manifest.probe.feature_dim), 0.0, (1, 1), {})
    (tmp_path / "p.json").write_text(json.dumps(record), "utf-8")
    assert load_shipped(tmp_path / "p.json").output == "tbg"
