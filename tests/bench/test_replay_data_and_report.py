"""RouteLLM data loading (contamination, MT-Bench turns), post-generation answer checks, and the report."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from bench.replay.data import STRONG, WEAK, load_gsm8k, load_mmlu, load_mt_bench, shuffled
from bench.replay.evaluate import reference_results
from bench.replay.post import _evaluate, answer_features
from bench.replay.report import DatasetReport, document, markdown, plot, table
from bench.routing_replay import REPO, bundle_states, default_data_dir, parse_config


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "routellm"
    gsm = root / "gsm8k"
    gsm.mkdir(parents=True)
    header = f"prompt,{WEAK},{STRONG},{WEAK}_response,{STRONG}_response\n"
    rows = ['q one,True,True,"1 + 1 = 2\n#### 2",x\n', 'q two,False,True,"<<2*3=7>>7\n#### 3.5",y\n',
            "q bad,True,False,a,b\n"]
    (gsm / "gsm8k_responses.csv").write_text(header + "".join(rows), encoding="utf-8")
    _write_jsonl(gsm / "contaminated_prompts.jsonl", [{"eval_prompt": "q bad", "eval_idx": 2}])
    mmlu = root / "mmlu"
    (mmlu / "responses").mkdir(parents=True)
    for subject, flags in (("a", ["True", "False"]), ("b", ["False", "True"])):
        text = f"prompt,{WEAK},{STRONG}\n" + "".join(f"{subject}{i},{f},True\n" for i, f in enumerate(flags))
        (mmlu / "responses" / f"mmlu_{subject}.csv").write_text(text, encoding="utf-8")
    _write_jsonl(mmlu / "contaminated_prompts.jsonl", [{"eval_prompt": "b0"}])
    mt = root / "mt_bench"
    _write_jsonl(mt / "question.jsonl", [{"question_id": 1, "category": "math", "turns": ["t1", "t2"]},
                                         {"question_id": 2, "category": "writing", "turns": ["u1", "bad"]}])
    _write_jsonl(mt / "contaminated_prompts.jsonl", [{"eval_prompt": "bad"}])
    judgements = [{"question_id": q, "model": m, "turn": t, "score": s}
                  for q in (1, 2) for m, base in ((WEAK, 6), (STRONG, 9)) for t, s in ((1, base), (2, base - 2))]
    _write_jsonl(mt / "judgements.jsonl", judgements)
    return tmp_path / "data"


def test_contaminated_prompts_are_dropped(data_dir: Path) -> None:
    gsm = load_gsm8k(data_dir)
    assert gsm.prompts == ("q one", "q two") and gsm.dropped == 1
    np.testing.assert_array_equal(gsm.weak, [1.0, 0.0])
    mmlu = load_mmlu(data_dir)
    assert mmlu.prompts == ("a0", "a1", "b1") and mmlu.group_names == ("a", "b")
    np.testing.assert_array_equal(mmlu.group, [0, 0, 1])


def test_mt_bench_routes_on_the_first_turn_and_averages_both_turns(data_dir: Path) -> None:
    mt = load_mt_bench(data_dir)
    assert mt.prompts == ("t1",) and mt.dropped == 1
    np.testing.assert_array_equal(mt.weak, [5.0])
    np.testing.assert_array_equal(mt.strong, [8.0])


def test_shuffled_prefixes_are_a_fixed_subsample(data_dir: Path) -> None:
    mmlu = load_mmlu(data_dir)
    assert shuffled(mmlu).prompts == shuffled(mmlu).prompts
    assert sorted(shuffled(mmlu).prompts) == sorted(mmlu.prompts)


def test_answer_checks_find_arithmetic_slips_and_non_integer_answers() -> None:
    assert _evaluate("(3 + 4) * 2") == 14.0
    assert _evaluate("__import__('os')") is None
    features = answer_features(["3 * 4 = 12 so <<12/2=6>>6\n#### 6", "<<2*3=7>>7\n#### 3.5"])
    ann_wrong, inline_wrong, non_integer = 0, 2, 6
    assert features[0, ann_wrong] == 0 and features[1, ann_wrong] == 1
    assert features[0, inline_wrong] == 0
    assert features[0, non_integer] == 0 and features[1, non_integer] == 1


def test_report_prints_anchors_and_writes_json_and_png(data_dir: Path, tmp_path: Path) -> None:
    gsm = load_gsm8k(data_dir)
    results = reference_results(gsm.weak, gsm.strong)
    results.append(results[1].__class__("knn", False, 0.6, 0.3, 0.7, 0.01, 0.02, results[1].curve))
    rep = DatasetReport(gsm, results, folds=2, seeds=1, embed_tokens=256)
    text = table([rep])
    assert "33.64" not in text or "0.3364" in text
    assert "other data" in text and "knn" in text
    cpu = {"cpu_model": "Some CPU", "cpu_isa": "x86-64 AVX2", "cpu_features": "AVX2 FMA3"}
    doc = document([rep], {"quick": True}, cpu)
    assert doc["cpu_isa"] == "x86-64 AVX2"
    assert set(doc["datasets"]["gsm8k"]["routers"]["knn"]) >= {"apgr", "cpt50", "cpt80"}
    assert doc["datasets"]["gsm8k"]["best_pre_generation"]["router"] == "knn"
    plot(rep, tmp_path / "png" / "gsm8k.png")
    assert (tmp_path / "png" / "gsm8k.png").stat().st_size > 1000
    block = markdown([rep], ["docs/img/routing_replay_gsm8k.png"], "python -m bench.routing_replay --readme", cpu)
    assert "CPU: Some CPU (x86-64 AVX2)." in block
    assert "| gsm8k | 2 | knn | 0.600 | 30.0% | 70.0% |" in block
    assert "![routing_replay_gsm8k](docs/img/routing_replay_gsm8k.png)" in block and "other data" in block


def test_data_folder_comes_from_flag_then_env_then_next_to_the_repo(tmp_path: Path) -> None:
    assert parse_config(["--data", str(tmp_path)], {}).data_dir == tmp_path
    assert parse_config([], {"CONFROUTE_DATA_DIR": str(tmp_path)}).data_dir == tmp_path
    assert default_data_dir({}).parts[-2:] == ("shared", "data")
    assert parse_config(["--readme"], {}).png_dir == REPO / "docs" / "img"
    quick = parse_config(["--quick"], {})
    assert quick.mmlu_rows == 2000 and quick.seeds == 1 and quick.folds == 5


def test_the_hidden_state_bundle_defaults_to_the_cached_cloud_model_and_can_be_turned_off(tmp_path: Path) -> None:
    env = {"CONFROUTE_CACHE_DIR": str(tmp_path)}
    assert parse_config([], env).states_bundle == tmp_path / "bundles" / "qwen2.5-coder-0.5b-instruct-int8"
    assert parse_config(["--states-bundle", str(tmp_path / "b")], env).states_bundle == tmp_path / "b"
    assert parse_config(["--no-states"], env).states_bundle is None


def test_quick_runs_read_hidden_states_only_from_a_bundle_given_on_the_command_line(tmp_path: Path) -> None:
    env = {"CONFROUTE_CACHE_DIR": str(tmp_path)}
    assert parse_config(["--quick"], env).states_bundle is None  # computing them can take a quarter of an hour
    assert parse_config(["--quick", "--states-bundle", str(tmp_path / "b")], env).states_bundle == tmp_path / "b"


def test_a_missing_states_bundle_skips_the_router(tmp_path: Path) -> None:
    assert bundle_states(parse_config(["--states-bundle", str(tmp_path / "absent")], {})) is None
