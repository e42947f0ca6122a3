from __future__ import annotations

from pathlib import Path

from confroute.engine import Engine
from confroute.uncertainty.judge import engine_judge
from confroute.uncertainty.semantic_entropy import cluster_by_judge


def test_an_engine_judges_deterministically_and_caches_its_replies(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    judge = engine_judge(engine, "What is the capital of France?")
    first = judge("Paris", "It is Paris.")
    assert isinstance(first, bool) and judge("Paris", "It is Paris.") == first
    ids = cluster_by_judge(["Paris", "Paris", "Lyon"], judge)
    assert ids[0] == ids[1] and ids.tolist() in ([0, 0, 0], [0, 0, 1])
