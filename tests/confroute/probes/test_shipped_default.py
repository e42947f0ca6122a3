"""The router probe shipped in the repository: it loads, fits the default bundle, and beat chance on held-out
questions by a margin (recorded at training time, so this holds on any CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from confroute.engine import Engine, SamplingParams
from confroute.modelkit.head import default_probe_layers
from confroute.modelkit.sources import DEFAULT_GGUF_SHA256
from confroute.probes.router import read_outcomes
from confroute.probes.shipped import install_shipped, load_shipped

SMOLLM2_LAYERS, SMOLLM2_HIDDEN = 30, 576


def test_the_shipped_probe_reads_the_default_bundles_hidden_states() -> None:
    probe = load_shipped()
    assert probe.output == "tbg" and probe.source_sha256 == DEFAULT_GGUF_SHA256
    assert probe.probe_layers == default_probe_layers(SMOLLM2_LAYERS) and probe.hidden == SMOLLM2_HIDDEN
    first, last = probe.probe_layers
    assert first <= probe.layers[0] <= probe.layers[1] <= last
    assert probe.full_weight().size == (last - first + 1) * SMOLLM2_HIDDEN
    assert np.all(np.isfinite(probe.weight)) and np.isfinite(probe.bias)


def test_its_provenance_records_data_seed_and_a_held_out_auroc_well_above_chance() -> None:
    record = load_shipped().provenance
    assert record["label"] == "route" and record["trainer"] == "confroute-probe router"
    data = record["data"]
    assert data["recipe"]["seed"] == 0 and {"ladder", "arc_easy", "piqa"} <= set(data["sets"])
    assert all(len(s["sha256"]) == 64 for name, s in data["sets"].items() if name != "ladder")
    assert data["cloud_outcomes"]["sha256"] == read_outcomes()[1]
    assert record["bundle"]["quantization"]["bits"] == 8 and record["bundle"]["graph_version"] >= 2
    held = record["held_out"]
    assert held["n"] >= 90 and held["auroc"] >= 0.7
    assert held["pre"]["apgr"] > 0.6  # a random router's APGR is 0.5


@pytest.mark.real_model
@pytest.mark.slow
def test_installed_into_the_8bit_bundle_the_graph_scores_what_numpy_computes(smollm2_int8_bundle: Path,
                                                                            tmp_path: Path) -> None:
    import shutil

    bundle = Path(shutil.copytree(smollm2_int8_bundle, tmp_path / "bundle"))
    probe = load_shipped()
    if "tbg" in Engine(bundle).manifest.probe.trained:
        pytest.skip("the cached bundle already carries a trained TBG probe")
    assert install_shipped(bundle, probe).startswith("wrote the shipped router probe")
    engine = Engine(bundle)
    for question in ("What is 47 times 38? Answer with the number only.", "What is 2 plus 3?"):
        run = engine.start(engine.encode_chat([{"role": "user", "content": question}]),
                           SamplingParams(max_new_tokens=2), features=True)
        gen = run.result
        assert run.tbg_features is not None and gen.tbg is not None
        expected = 1 / (1 + np.exp(-(run.tbg_features.astype(np.float64) @ probe.full_weight() + probe.bias)))
        assert gen.tbg == pytest.approx(float(expected), abs=1e-4)
