"""bench.edge_generation's paired comparisons: per-round ratios, their interval, the rounds ours led."""

from __future__ import annotations

from typing import Any

from bench.edge_generation import COMPARISONS, comparison_lines, paired


def _rows(**rounds: list[float]) -> dict[str, dict[str, Any]]:
    return {name: {"decode_tok_s_all": values} for name, values in rounds.items()}


def test_ratios_pair_rounds_not_medians() -> None:
    # a load swing hits both backends in the same round: ours is 10% ahead in every round
    speed = _rows(ours=[110.0, 55.0, 220.0, 110.0, 88.0], genai=[100.0, 50.0, 200.0, 100.0, 80.0])
    result = paired(speed, "ours", "genai")
    assert result == {"median": 1.1, "ci90": [1.1, 1.1], "ahead": 5, "rounds": 5}


def test_the_interval_brackets_the_median_and_is_seeded() -> None:
    speed = _rows(ours=[101.0, 97.0, 104.0, 99.0, 103.0, 100.5, 98.0], genai=[100.0] * 7)
    first, again = paired(speed, "ours", "genai"), paired(speed, "ours", "genai")
    assert first == again
    assert first["ci90"][0] <= first["median"] <= first["ci90"][1]
    assert (first["ahead"], first["rounds"]) == (4, 7)


def test_one_line_per_malloc_setting_names_both_precisions() -> None:
    result = {"paired": {key: {"median": 1.0, "ci90": [0.99, 1.01], "ahead": 3, "rounds": 5} for key in COMPARISONS}}
    lines = comparison_lines(result).splitlines()
    assert len(lines) == 3 and all("fp32 1.000 [0.990, 1.010] ahead in 3/5 rounds; 8-bit" in line for line in lines)


def test_the_exact_4bit_rows_are_compared_with_both_genai_rows() -> None:
    from bench.edge_generation import int4_lines

    result = {"paired": {key: {"median": 1.5, "ci90": [1.4, 1.6], "ahead": 5, "rounds": 5} for key in COMPARISONS}}
    lines = int4_lines(result).splitlines()
    assert lines == ["ours exact 4-bit / genai int8: 1.500 [1.400, 1.600] ahead in 5/5 rounds",
                     "ours exact 4-bit / genai int4 (lossy): 1.500 [1.400, 1.600] ahead in 5/5 rounds"]


def test_the_summary_carries_the_int4_keys_head_costs_and_the_physical_limit() -> None:
    from bench.edge_generation import cost_lines, summary_json

    rows = ["ours_fp32", "ours_int8", "ours_int4", "genai_fp32", "genai_int8", "genai_int4", "torch_fp32",
            "ours_fp32_default_malloc", "ours_int8_default_malloc", "genai_fp32_huge_pages", "genai_int8_huge_pages"]
    speed = {name: {"decode_tok_s": 100.0, "decode_tok_s_all": [100.0, 100.0]} for name in rows}
    qual = {name: {"mean_kl": 0.001, "top1_agreement": 1.0} for name in rows}
    head = {"head_overhead_pct": 1.0, "head_overhead_graph_pct": 2.0}
    child = {name: {"peak_rss_mb": 150.0, "cold_start_s": 0.5}
             for name in ("fp32", "int8", "int4", "int8_default_malloc", "genai_int4", "genai_int8")}
    cost = {"steps": 99.0, "step_us": 5000.0, "head_us": 50.0, "unmatched_us": 0.0, "head_pct": 1.0, "head_nodes": 23.0}
    limit = {"copy_bandwidth_gb_s": 20.0,
             "rows": {"ours_int4": {"mb_per_token": 113.75, "gb_per_s": 11.4, "of_bandwidth": 0.57}}}
    meta = {"head_cost": {"fp32": cost, "int8": cost, "int4": cost}, "physical_limit": limit}
    result = summary_json(speed, qual, head, child, meta)
    for key in ("ours_int4_decode_tps", "ours_int4_kl", "genai_int4_decode_tps", "genai_int4_kl", "int4_peak_rss_mb",
                "int4_vs_genai_int8", "int4_vs_genai_int4", "int4_head_pct", "genai_int4_peak_rss_mb",
                "genai_int8_peak_rss_mb"):
        assert key in result, key
    assert "int4 1.00% of 5.00 ms" in cost_lines(result)
    assert "ours_int4 114 MB/token = 11.40 GB/s (57%)" in cost_lines(result)
