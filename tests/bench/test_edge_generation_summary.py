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
