"""Every timed backend of :mod:`bench.edge_generation` in a process of its own, driven over pipes.

Sessions loaded one after another into one process do not run alike: on this machine the same graph
loaded last decoded up to 4% faster than when loaded first (an ad-hoc raw onnxruntime loop, 8 interleaved rounds;
onnxruntime-genai's graph showed the same). A benchmark that loads ours first and the baselines after
would hand them that edge, so each backend lives alone in a worker, and the parent interleaves the
rounds across workers (one runs at a time; the others wait on their pipe, using no CPU).

A worker is ``python -m bench.workers JOB_JSON``. It loads what the job names, writes ``ready``, then for
every ``run`` line on its stdin writes one JSON line with the measurement; EOF on stdin ends it. Jobs:

- ``{"kind": "generate", "backend": NAME, ...}``: one greedy generation of exactly ``new_tokens``
  (:func:`bench.ours.generate_once` or a baseline's), answered as ``prefill_s``, ``decode_s``,
  ``new_tokens``, ``tokens``; with ``"huge_pages": true`` the worker starts with glibc's huge-page malloc
  (:func:`job_environment`), otherwise with glibc's default whatever the parent has;
- ``{"kind": "step", "bundle": DIR, "head": bool, "pick": bool, ...}``: the fastest decode step of a raw
  loop over one session (:func:`bench.ours.step_timer`), answered as ``step_ms``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from bench import ours
from bench.baselines import RunTiming
from edge_agent import huge_pages

Measure = Callable[[], dict[str, Any]]
BACKENDS = ("ours_fp32", "ours_int8", "ours_int4", "torch_fp32", "genai_fp32", "genai_int8", "genai_int4")


def generate_job(backend: str, path: Path, prompt: Sequence[int], new_tokens: int, threads: int,
                 huge_pages: bool = False) -> dict[str, Any]:
    """The job of timing ``backend`` (one of :data:`BACKENDS`) on the model at ``path``; ``huge_pages``
    starts its worker with glibc's huge-page malloc, as ``edge-agent serve`` runs (:mod:`edge_agent.huge_pages`)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    return {"kind": "generate", "backend": backend, "path": str(path), "prompt": list(prompt),
            "new_tokens": new_tokens, "threads": threads, "huge_pages": huge_pages}


def environment(environ: Mapping[str, str], *, huge_pages_on: bool) -> dict[str, str]:
    """A child's environment: ``environ`` with glibc's tunables set to huge-page malloc or to nothing."""
    env = {k: v for k, v in environ.items() if k != "GLIBC_TUNABLES"}
    return {**env, "GLIBC_TUNABLES": huge_pages.TUNABLE} if huge_pages_on else env


def job_environment(job: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment: the parent's, with glibc's tunables set by the job alone."""
    return environment(environ, huge_pages_on=bool(job.get("huge_pages")))


def step_job(bundle: Path, prompt: Sequence[int], steps: int, *, head: bool, pick: bool = True,
             threads: int = 2) -> dict[str, Any]:
    """The job of timing single decode steps of ``bundle``'s graph (see :func:`bench.ours.step_timer`)."""
    return {"kind": "step", "bundle": str(bundle), "prompt": list(prompt), "steps": steps, "head": head,
            "pick": pick, "threads": threads}


class Worker:
    """One job's process: started and loaded on ``__enter__``, measured by :meth:`run`, ended on exit."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Worker:
        self._process = subprocess.Popen([sys.executable, "-m", "bench.workers", json.dumps(self.job)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                         env=job_environment(self.job, os.environ))
        try:
            self._expect_line("ready")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._process = None

    def run(self) -> dict[str, Any]:
        """One measurement, as the job's kind answers it."""
        process = self._live()
        assert process.stdin is not None
        process.stdin.write("run\n")
        process.stdin.flush()
        return dict(json.loads(self._expect_line(None)))

    def _live(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise RuntimeError("the worker is not started: use it in a with block")
        return self._process

    def _expect_line(self, wanted: str | None) -> str:
        process = self._live()
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line or (wanted is not None and line != wanted):
            try:
                code: int | None = process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            raise RuntimeError(f"the {self.job['kind']} worker for {self.job.get('backend') or self.job.get('bundle')} "
                               f"failed (exit status {code}; its error is above)")
        return line


def timing_answer(timing: RunTiming, tokens: list[int]) -> dict[str, Any]:
    return {"prefill_s": timing.prefill_s, "decode_s": timing.decode_s, "new_tokens": timing.new_tokens,
            "tokens": tokens}


def timing_of(answer: dict[str, Any]) -> tuple[RunTiming, list[int]]:
    """The parent's side of :func:`timing_answer`."""
    timing = RunTiming(float(answer["prefill_s"]), float(answer["decode_s"]), int(answer["new_tokens"]))
    return timing, [int(t) for t in answer["tokens"]]


def _generator(job: dict[str, Any]) -> Measure:
    """Loads the job's backend; the returned callable generates once."""
    from bench.baselines import genai, torch_generate

    backend, path, threads = job["backend"], Path(job["path"]), int(job["threads"])
    prompt, new_tokens = [int(t) for t in job["prompt"]], int(job["new_tokens"])
    if backend.startswith("ours_"):
        engine = ours.load_engine(path, threads)
        return lambda: timing_answer(*ours.generate_once(engine, prompt, new_tokens))
    if backend == "torch_fp32":
        torch_generate._set_threads(threads)
        model = torch_generate.load_model(path)
        return lambda: timing_answer(*torch_generate._generate_once(model, prompt, new_tokens))
    genai_model = genai.load_model(path, threads)
    return lambda: timing_answer(*genai._generate_once(genai_model, prompt, new_tokens))


def _stepper(job: dict[str, Any]) -> Measure:
    """Loads the job's bundle into one session; the returned callable times a run of decode steps."""
    measure = ours.step_timer(Path(job["bundle"]), int(job["threads"]))
    prompt, steps = [int(t) for t in job["prompt"]], int(job["steps"])
    return lambda: {"step_ms": measure(prompt, steps, bool(job["head"]), bool(job["pick"]))}


def serve(job: dict[str, Any], commands: IO[str], answers: IO[str]) -> None:
    """The worker's loop: load, say ``ready``, answer every ``run`` until EOF."""
    measure = _generator(job) if job["kind"] == "generate" else _stepper(job)
    answers.write("ready\n")
    answers.flush()
    for line in commands:
        if line.strip() != "run":
            raise ValueError(f"unknown command {line.strip()!r}")
        answers.write(json.dumps(measure()) + "\n")
        answers.flush()


def main(argv: Sequence[str]) -> int:
    (job_text,) = argv
    # The answers get the real stdout to themselves; anything a library prints (Python or C) goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(json.loads(job_text), sys.stdin, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
