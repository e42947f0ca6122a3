"""The shipped router probe's recipe at tiny scale: record the cloud's outcomes, train, measure, save, install."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from confroute.bundle.store import load_bundle
from confroute.engine import Engine
from confroute.errors import InvalidInput
from confroute.probes.cli import main
from confroute.probes.router import (
    CloudOutcomes,
    RouterRecipe,
    item_key,
    operating_points,
    read_outcomes,
    recipe_items,
    record_outcomes,
    with_outcomes,
)
from confroute.probes.shipped import load_shipped

RECIPE = RouterRecipe(n_ladder=24, n_mc=12, seed=0)


@pytest.fixture
def data_pack(tmp_path: Path) -> Path:
    """The two multiple-choice files of the data pack, 20 rows each, in the pack's normalised format."""
    for rel, name in (("arc/arc_easy_test.jsonl", "arc"), ("piqa/piqa_valid.jsonl", "piqa")):
        path = tmp_path / "data" / rel
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps({"id": f"{name}-{i}", "question": f"{name} question {i}?",
                                            "choices": ["yes", "no"], "answer_idx": i % 2}) + "\n"
                                for i in range(20)), "utf-8")
    return tmp_path / "data"


def test_the_recipe_draws_ladder_and_multiple_choice_questions(data_pack: Path) -> None:
    items = recipe_items(data_pack, RECIPE)
    assert [i.dataset for i in items] == ["ladder"] * 24 + ["arc_easy"] * 12 + ["piqa"] * 12
    assert len({item_key(i) for i in items}) == 48


def test_every_question_needs_a_recorded_cloud_outcome(data_pack: Path, probe_bundle: Path) -> None:
    items = recipe_items(data_pack, RECIPE)
    recorded = record_outcomes(Engine(probe_bundle), items, max_new_tokens=3)
    assert set(recorded.correct) == {item_key(i) for i in items} and recorded.model.startswith("tiny")
    assert [e.cloud_correct for e in with_outcomes(items, recorded)] == list(recorded.correct.values())
    with pytest.raises(InvalidInput, match="no recorded cloud outcome"):
        with_outcomes(items, CloudOutcomes("m", 3, {}))


def test_operating_points_count_accuracy_and_cloud_calls() -> None:
    edge, cloud = np.array([1.0, 0.0, 0.0, 1.0]), np.array([1.0, 1.0, 1.0, 0.0])
    pre, post = np.array([0.9, 0.1, 0.45, 0.6]), np.array([0.9, 0.2, 0.9, 0.2])
    points = operating_points(pre, post, edge, cloud)
    assert points["pre@0.5"] == {"accuracy": 1.0, "cloud_rate": 0.5, "pgr": 2.0}  # both escalations gain
    assert points["post@0.5"] == {"accuracy": 0.5, "cloud_rate": 0.5, "pgr": 0.0}
    # hybrid 0.4-0.8: 0.1 escalates at once; 0.45 and 0.6 are generated first, and 0.6's answer (post 0.2) goes up
    assert points["hybrid@0.4-0.8"]["cloud_rate"] == 0.5 and points["hybrid@0.4-0.8"]["generated_first"] == 0.5


def test_the_router_command_trains_saves_and_installs_the_probe(
        data_pack: Path, sourced_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    probe_bundle = sourced_bundle
    items = recipe_items(data_pack, RECIPE)
    outcomes = tmp_path / "outcomes.json"
    # the tiny model is never right: escalating helps exactly where the cloud is recorded right (every other one)
    outcomes.write_text(json.dumps(CloudOutcomes("cloud@1", 3, {item_key(i): n % 2 == 0
                                                                for n, i in enumerate(items)}).to_json()), "utf-8")
    assert read_outcomes(outcomes)[0].model == "cloud@1"
    out = tmp_path / "router_tbg.json"
    args = ["router", "--bundle", str(probe_bundle), "--data", str(data_pack), "--outcomes", str(outcomes),
            "--out", str(out), "--n-ladder", "24", "--n-mc", "12"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "held out (14): AUROC" in err and "pre: APGR" in err and "post: APGR" in err
    shipped = load_shipped(out)
    record = shipped.provenance
    assert record["label"] == "route" and record["trainer"] == "confroute-probe router"
    assert record["data"]["cloud_outcomes"]["model"] == "cloud@1" and record["data"]["sets"]["ladder"]["n"] == 24
    assert len(record["data"]["sets"]["piqa"]["sha256"]) == 64
    assert {"auroc", "pre", "post", "operating_points"} <= set(record["held_out"])
    assert record["bundle"]["graph_version"] == load_bundle(probe_bundle).graph_version
    assert load_bundle(probe_bundle).probe.trained == {}  # without --install the bundle is unchanged
    assert main([*args, "--install"]) == 0
    assert "wrote the shipped router probe" in capsys.readouterr().err
    assert load_bundle(probe_bundle).probe.trained["tbg"]["trainer"] == "confroute-probe router"
    assert main(["install", "--bundle", str(probe_bundle)]) == 0  # never over a bundle's own trained probe
    assert "kept the bundle's own trained tbg probe" in capsys.readouterr().err
