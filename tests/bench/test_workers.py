"""bench.workers: a backend loaded alone in its own process, measured over a pipe."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bench import workers
from edge_agent import huge_pages


def test_a_generate_worker_answers_every_run_with_the_same_greedy_tokens(tiny_bundles: dict[str, Path]) -> None:
    job = workers.generate_job("ours_fp32", tiny_bundles["llama"], [5, 6, 7], new_tokens=8, threads=1)
    with workers.Worker(job) as worker:
        first, second = worker.run(), worker.run()
    timing, tokens = workers.timing_of(first)
    assert len(tokens) == timing.new_tokens == 8 and timing.decode_s > 0
    assert workers.timing_of(second)[1] == tokens


def test_a_step_worker_answers_the_fastest_step(tiny_bundles: dict[str, Path]) -> None:
    job = workers.step_job(tiny_bundles["llama"], [5, 6, 7], steps=4, head=True, threads=1)
    with workers.Worker(job) as worker:
        assert worker.run()["step_ms"] > 0


def test_a_worker_that_cannot_load_fails_naming_its_job(tmp_path: Path) -> None:
    job = workers.step_job(tmp_path / "missing", [1], steps=1, head=True)
    with pytest.raises(RuntimeError, match="missing"), workers.Worker(job):
        pass


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        workers.generate_job("llama.cpp", Path("."), [1], 1, 1)


def test_serve_answers_one_json_line_per_run(tiny_bundles: dict[str, Path]) -> None:
    job = workers.step_job(tiny_bundles["llama"], [5, 6], steps=2, head=False, pick=False, threads=1)
    answers = io.StringIO()
    workers.serve(job, io.StringIO("run\nrun\n"), answers)
    lines = answers.getvalue().splitlines()
    assert lines[0] == "ready" and [sorted(json.loads(line)) for line in lines[1:]] == [["step_ms"]] * 2


def test_only_a_huge_pages_job_gets_the_malloc_tunable() -> None:
    parent = {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    plain = workers.generate_job("genai_int8", Path("m"), [1], 1, 1)
    served = workers.generate_job("ours_int8", Path("b"), [1], 1, 1, huge_pages=True)
    assert workers.job_environment(plain, parent) == {"PATH": "/bin"}
    assert workers.job_environment(served, parent) == {"PATH": "/bin", "GLIBC_TUNABLES": huge_pages.TUNABLE}
