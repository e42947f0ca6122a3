"""The head's share of a decode step, from onnxruntime's per-node profile of one session."""

from __future__ import annotations

from pathlib import Path

import onnx

from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.head_cost import head_nodes, measure, summarize
from confroute.modelkit.tiny import tiny_source


def _export(tmp_path: Path, head: bool) -> Path:
    export_bundle(tiny_source("llama"), tmp_path / "b", ExportOptions(head=head), lambda _m: None)
    return tmp_path / "b"


def test_the_head_is_what_neither_the_logits_nor_the_cache_need(tmp_path: Path) -> None:
    model = onnx.load(str(_export(tmp_path, head=True) / "model.onnx"), load_external_data=False)
    head = head_nodes(model)
    producers = {out: node.name for node in model.graph.node for out in node.output}
    for output in ("next_token", "entropy", "max_prob", "argmax_logprob", "probe", "probe_features"):
        assert producers[output] in head
    assert producers["logits"] not in head and producers["present.0.key"] not in head


def test_a_graph_without_the_head_has_no_head_nodes(tmp_path: Path) -> None:
    model = onnx.load(str(_export(tmp_path, head=False) / "model.onnx"), load_external_data=False)
    assert head_nodes(model) == set()


def test_runs_after_the_prefill_are_summed_node_by_node() -> None:
    def run(ts: int, dur: int) -> dict[str, object]:
        return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}

    def node(name: str, ts: int, dur: int) -> dict[str, object]:
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur}

    events = [run(0, 500), node("Exp_1", 10, 400),  # the prefill, left out
              run(1000, 100), node("Exp_1", 1010, 3), node("MatMul_2", 1020, 80), node("Other_9", 1090, 5),
              run(2000, 120), node("Exp_1", 2010, 5), node("MatMul_2", 2020, 90),
              node("fused Gemm_3", 2100, 2), node("Mul_4/QuickGeluFusion/", 2110, 6)]
    cost = summarize(events, {"Exp_1", "Gemm_3"}, {"Exp_1", "MatMul_2", "Gemm_3", "Mul_4"}, skip_runs=1)
    # medians over the two steps: steps 100 and 120 us, head 3 and 7 us, unmatched 5 and 0 us
    assert (cost.steps, cost.step_us, cost.head_us, cost.unmatched_us) == (2, 110.0, 5.0, 2.5)
    assert abs(cost.head_pct - 100 * (3 / 100 + 7 / 120) / 2) < 1e-9


def test_a_profiled_bundle_reports_a_small_positive_share(tmp_path: Path) -> None:
    cost = measure(_export(tmp_path, head=True), steps=20)
    assert cost.steps == 19 and cost.head_nodes > 10 and 0.0 < cost.head_pct < 50.0
