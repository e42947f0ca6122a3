"""Device API serving benchmark: OpenAI-client streams against ``edge-agent``'s HTTP API, 1..8 at once.

    python -m bench.edge_serving [--quick] [--json PATH]

The SmolLM2 8-bit bundle (the device default) on 2 threads, greedy, 128 new tokens, every answer local:
the agent runs in ``pre`` mode over a copy of the bundle whose TBG probe is set to a confident constant,
so each answer streams as it is decoded (the path whose TTFT matters). Clients are the official ``openai``
package, in this process, on loopback.

* ``tps_cN``: aggregate completion tokens per second with N concurrent streams (tokens / wall time of a
  round, median over rounds); ``stream_tps_cN``: the median per-stream rate (tokens after the first / time
  after the first token). The levels are interleaved (each round runs c=1, 2, 4, 8 in turn) and
  ``speedup_cN`` is the median of each round's tps_cN / tps_c1: on a shared machine the load moves between
  rounds, and a ratio within one round is what holds.
* ``ttft_p50_ms_cN`` / ``ttft_p99_ms_cN``: request sent -> first content chunk received.
* ``engine_ttft_ms``: the engine alone, prefill + one decode step; ``engine_tps``: the engine alone (the
  batching engine the agent serves with, one request); ``serial_tps``: a non-batching engine (``max_batch``
  1), the reference that requests answered one at a time would share.
* The agent decodes up to ``--batch`` answers together (continuous batching, default 8) and the API admits
  as many at once; ``--batch 1`` measures the one-at-a-time server.
* ``graph_step_ms_r1`` / ``graph_step_ms_r4`` / ``graph_prefill_ms``: the graph alone (no scheduler, no
  threads) stepping 1 and 4 rows and prefilling the prompt; ``graph_ceiling_c4``: the c=4 speedup a round
  made of only these costs would reach, the bound ``speedup_c4`` is read against.
* ``http_overhead_pct``: the API round trip of one whole answer at c=1 vs the engine alone generating
  the same tokens (median of interleaved pairs); ``agent_overhead_pct``: the agent called in process vs
  the engine, so the HTTP layer's own share is the difference.
* ``api_cpu_us_per_token``: the CPU time the API spends per streamed token (server and a raw ``http.client``
  reader, with an answerer that produces tokens instantly), and ``api_cpu_share_pct``: that cost as a share
  of one token of the engine alone. Counted in CPU time, it holds on a loaded machine, where wall-clock
  overheads do not.
* ``rss_mb``: the process's resident memory after the run (model, server and clients together).
* ``load_avg_1m``: the machine's load average at the end (above the core count, every timing is ad hoc).

Numbers from a shared machine are ad hoc: ratios within one run are what to compare.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import http.client
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.cpu import this_cpu
from confroute.bundle import load_bundle
from confroute.bundle.probe import write_probe
from confroute.contract import ModelRef, RoutingMode, Thresholds
from confroute.engine import Engine, SamplingParams
from confroute.paths import cache_dir, default_bundle_dir
from confroute.routing import default_policy
from edge_agent.answer import AgentAnswer, TextDelta, TokenLogprob
from edge_agent.api import ApiConfig, serve_api
from edge_agent.cloud import PolicyKeeper
from edge_agent.core import AgentIdentity, EdgeAgent
from edge_agent.model import EdgeModel, runtime_options
from edge_agent.outbox import OutcomeQueue, QueueConfig

PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a map. Keep going."
MESSAGES: Any = [{"role": "user", "content": PROMPT}]
CONCURRENCY = (1, 2, 4, 8)
THREADS = 2


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class StreamTiming:
    ttft_s: float
    total_s: float
    tokens: int


def confident_copy(bundle: Path, into: Path) -> Path:
    """The bundle with its TBG probe set to a confident constant (weights hard-linked where the file system
    allows: onnxruntime refuses external data behind a symbolic link)."""
    into.mkdir()
    for item in bundle.iterdir():
        if item.name.startswith("."):
            continue
        if item.name == "model.onnx.data":
            try:
                os.link(item, into / item.name)
                continue
            except OSError:
                pass
        shutil.copy2(item, into / item.name)
    dim = load_bundle(into).probe.feature_dim
    write_probe(into, "tbg", np.zeros(dim), float(np.log(0.95 / 0.05)), {"labels": "bench constant"})
    return into


@contextmanager
def local_agent(bundle: Path, workdir: Path, batch: int) -> Iterator[tuple[EdgeAgent, EdgeModel]]:
    model = EdgeModel(bundle, runtime_options("cpu", THREADS), max_batch=batch)
    keeper = PolicyKeeper(ModelRef(model.model_id, model.version), "bench")
    base = default_policy(ModelRef(model.model_id, model.version), "bench")
    keeper.offer(dataclasses.replace(base, policy_version="bench-pre", mode=RoutingMode.PRE, shadow_rate=0.0,
                                     thresholds=Thresholds(pre=0.5, post=0.0, hybrid_low=0.2, hybrid_high=0.8),
                                     issued_at=datetime.now(timezone.utc)))
    with OutcomeQueue(QueueConfig(workdir / "outbox.db")) as queue:
        agent = EdgeAgent(model, keeper, queue, AgentIdentity("bench", "bench"))
        try:
            yield agent, model
        finally:
            agent.close()
            model.close()


def engine_alone(model: EdgeModel, params: SamplingParams) -> tuple[float, float, int]:
    """(prefill + first step ms, whole answer s, tokens) of the engine without agent or HTTP."""
    started = time.perf_counter()
    run = model.start(MESSAGES, params)
    first_ms = 0.0
    tokens = 0
    for event in run:
        if event.token_id is not None:
            tokens += 1
            if tokens == 2:  # the prefill chose the first token; the first decode step the second
                first_ms = (time.perf_counter() - started) * 1000.0
    return first_ms, time.perf_counter() - started, tokens


def stream_once(client: Any, model_id: str, max_tokens: int) -> StreamTiming:
    started = time.perf_counter()
    ttft = None
    tokens = 0
    with client.chat.completions.create(model=model_id, messages=MESSAGES, max_tokens=max_tokens, stream=True,
                                        stream_options={"include_usage": True}) as stream:
        for chunk in stream:
            if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                ttft = time.perf_counter() - started
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
    total = time.perf_counter() - started
    return StreamTiming(ttft if ttft is not None else total, total, tokens)


@dataclasses.dataclass
class Level:
    """What the rounds at one concurrency measured: each round's aggregate tok/s, and every stream."""

    clients: int
    tps: list[float] = dataclasses.field(default_factory=list)
    timings: list[StreamTiming] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, float]:
        c = self.clients
        ttfts = [t.ttft_s * 1000.0 for t in self.timings]
        per_stream = [(t.tokens - 1) / (t.total_s - t.ttft_s) for t in self.timings
                      if t.tokens > 1 and t.total_s > t.ttft_s]
        return {f"tps_c{c}": statistics.median(self.tps), f"stream_tps_c{c}": statistics.median(per_stream),
                f"ttft_p50_ms_c{c}": float(np.percentile(ttfts, 50)),
                f"ttft_p99_ms_c{c}": float(np.percentile(ttfts, 99))}


def one_round(pool: concurrent.futures.ThreadPoolExecutor, clients: Sequence[Any], model_id: str, max_tokens: int,
              level: Level) -> None:
    """``len(clients)`` streams at once; adds the round's aggregate tok/s and its streams to ``level``."""
    started = time.perf_counter()
    batch = list(pool.map(lambda c: stream_once(c, model_id, max_tokens), clients))
    level.tps.append(sum(t.tokens for t in batch) / (time.perf_counter() - started))
    level.timings.extend(batch)


def interleaved_levels(make_client: Callable[[], Any], model_id: str, concurrency: Sequence[int], rounds: int,
                       max_tokens: int) -> dict[str, float]:
    """Each round runs every concurrency in turn (c=1, 2, 4, 8, then again), so a change in the machine's
    load hits every level alike; ``speedup_cN`` is the median over rounds of that round's tps_cN / tps_c1."""
    levels = {c: Level(c) for c in concurrency}
    opened = [make_client() for _ in range(max(concurrency))]
    with concurrent.futures.ThreadPoolExecutor(max(concurrency)) as pool:
        one_round(pool, opened[:1], model_id, 8, Level(1))  # warm-up
        for r in range(rounds):
            for c in concurrency:
                _log(f"round {r + 1}/{rounds}: {c} concurrent streams")
                one_round(pool, opened[:c], model_id, max_tokens, levels[c])
    for client in opened:
        client.close()
    result: dict[str, float] = {}
    for level in levels.values():
        result.update(level.summary())
    if 1 in levels:
        for c, level in levels.items():
            if c != 1:
                result[f"speedup_c{c}"] = statistics.median(
                    n / one for n, one in zip(level.tps, levels[1].tps, strict=True))
    return result


def overheads(agent: EdgeAgent, model: EdgeModel, client: Any, model_id: str, params: SamplingParams,
              rounds: int) -> dict[str, float]:
    """Interleaved: engine alone, agent in process, API round trip (non-streamed), same greedy tokens."""
    def api() -> None:
        client.chat.completions.create(model=model_id, messages=MESSAGES, max_tokens=params.max_new_tokens)

    runs: dict[str, list[float]] = {"engine": [], "agent": [], "api": []}
    calls: dict[str, Callable[[], object]] = {"engine": lambda: engine_alone(model, params),
                                              "agent": lambda: agent.answer(MESSAGES, params), "api": api}
    for fn in calls.values():
        fn()  # warm-up
    for _ in range(rounds):
        for name, fn in calls.items():
            started = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - started)
    pairs = zip(runs["engine"], runs["agent"], runs["api"], strict=True)
    http = [100.0 * (a - e) / e for e, _, a in pairs]
    agent_share = [100.0 * (g - e) / e for e, g, _ in zip(runs["engine"], runs["agent"], runs["api"], strict=True)]
    return {"http_overhead_pct": statistics.median(http), "agent_overhead_pct": statistics.median(agent_share),
            "engine_answer_ms": 1000.0 * statistics.median(runs["engine"]),
            "api_answer_ms": 1000.0 * statistics.median(runs["api"])}


class _InstantAnswerer:
    """Produces ``n`` one-token deltas at once: what is left to measure is the API's own cost."""

    model_ids = ("instant",)

    def __init__(self, n: int) -> None:
        self.n = n

    def stream(self, messages: Any, params: SamplingParams) -> Iterator[TextDelta | AgentAnswer]:
        for _ in range(self.n):
            yield TextDelta(" tok", "edge", (TokenLogprob(" tok", -0.1),))
        yield AgentAnswer("q", " tok" * self.n, "edge", "instant", "local", 0.9, 0.5, "bench", False, "length", 1,
                          self.n, 0.0)

    def answer(self, messages: Any, params: SamplingParams) -> AgentAnswer:
        raise NotImplementedError


def api_cpu_per_token(n: int = 3000, rounds: int = 3) -> float:
    """Microseconds of CPU per streamed token through the API (best of ``rounds``)."""
    body = json.dumps({"model": "instant", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    costs = []
    with serve_api(_InstantAnswerer(n)) as server:
        for _ in range(rounds):
            connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
            started = time.process_time()
            connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            connection.getresponse().read()
            costs.append((time.process_time() - started) / n * 1e6)
            connection.close()
    return min(costs)


def reference(bundle: Path, params: SamplingParams, rounds: int) -> dict[str, float]:
    """An engine that does not batch: its tokens per second (the one-at-a-time reference), and its graph's
    costs, from which the c=4 speedup the graph alone allows follows (``graph_ceiling_c4``)."""
    model = EdgeModel(bundle, runtime_options("cpu", THREADS))
    runs = [engine_alone(model, params) for _ in range(rounds + 1)][1:]
    return {"serial_tps": statistics.median(e[2] / e[1] for e in runs),
            **graph_costs(model.engine, params.max_new_tokens, rounds)}


def graph_costs(engine: Engine, tokens: int, rounds: int, rows: int = 4) -> dict[str, float]:
    """The graph alone, no scheduler: ms per decode step of 1 and ``rows`` rows (at the prompt's length plus
    half the answer, the mean a round steps at) and of the prompt's prefill, interleaved, medians.

    ``graph_ceiling_c4``: the c=4 speedup if a round cost only these (4 prefills one at a time, then the
    steps of 4 rows, vs 1 prefill and the steps of 1 row)."""
    ids = np.asarray([engine.encode_chat(MESSAGES)], dtype=np.int64)
    decoder = engine.decoder
    kv = decoder.new_batch(rows, ids.shape[1] + tokens)
    timings: dict[str, list[float]] = {"prefill": [], "r1": [], f"r{rows}": []}

    def timed(name: str, fn: Callable[[], object], repeat: int) -> None:
        fn()  # warm-up: the first run after another shape rebinds
        started = time.perf_counter()
        for _ in range(repeat):
            fn()
        timings[name].append((time.perf_counter() - started) * 1000.0 / repeat)

    def prefill() -> None:
        decoder.forward(decoder.new_cache(ids.shape[1] + 1), ids)

    def step(n: int) -> Callable[[], object]:
        kv.lengths[:] = ids.shape[1] + tokens // 2  # step_rows does not advance the lengths: same position
        return lambda: decoder.step_rows(kv, np.full(n, 42, dtype=np.int64))

    for _ in range(max(3, rounds)):
        timed("prefill", prefill, 2)
        timed("r1", step(1), 10)
        timed(f"r{rows}", step(rows), 10)
    prefill_ms, one, many = (statistics.median(timings[k]) for k in ("prefill", "r1", f"r{rows}"))
    steps = tokens - 1  # the prefill chose the first token
    return {"graph_prefill_ms": prefill_ms, "graph_step_ms_r1": one, f"graph_step_ms_r{rows}": many,
            f"graph_ceiling_c{rows}": rows * (prefill_ms + steps * one) / (rows * prefill_ms + steps * many)}


def run(bundle: Path, workdir: Path, *, tokens: int, rounds: int, concurrency: Sequence[int],
        batch: int) -> dict[str, Any]:
    import openai

    params = SamplingParams(max_new_tokens=tokens)
    confident = confident_copy(bundle, workdir / "bundle")
    _log("serial engine")
    serial = reference(confident, params, rounds)
    with local_agent(confident, workdir, batch) as (agent, model):
        [model_id] = agent.model_ids
        _log("engine alone")
        engine = [engine_alone(model, params) for _ in range(rounds + 1)][1:]
        result: dict[str, Any] = {
            "engine_ttft_ms": statistics.median(e[0] for e in engine),
            "engine_tps": statistics.median(e[2] / e[1] for e in engine),
            **serial, "tokens": engine[0][2], "threads": THREADS, "batch": agent.parallel,
        }
        with serve_api(agent, ApiConfig(parallel=agent.parallel, queue=32)) as server:
            def make_client() -> Any:
                return openai.OpenAI(base_url=server.url, api_key="bench", max_retries=0, timeout=600.0)

            client = make_client()
            _log("overheads at c=1")
            result.update(overheads(agent, model, client, model_id, params, rounds))
            result.update(interleaved_levels(make_client, model_id, concurrency, max(2, rounds // 2), tokens))
            client.close()
    result["api_cpu_us_per_token"] = api_cpu_per_token()
    result["api_cpu_share_pct"] = result["api_cpu_us_per_token"] * result["engine_tps"] / 1e4
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result["load_avg_1m"] = os.getloadavg()[0]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_serving", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="32 tokens, fewer rounds, up to 4 streams")
    parser.add_argument("--batch", type=int, default=8, help="answers decoded together (1: one at a time)")
    args = parser.parse_args(argv)
    bundle = default_bundle_dir(cache_dir(os.environ), quantized=True)
    with tempfile.TemporaryDirectory(prefix="bench-edge-serving-") as tmp:
        result = run(bundle, Path(tmp), tokens=32 if args.quick else 128, rounds=2 if args.quick else 6,
                     concurrency=(1, 4) if args.quick else CONCURRENCY, batch=args.batch)
    result["ttft_vs_engine"] = result["ttft_p50_ms_c1"] / result["engine_ttft_ms"]
    for key, value in result.items():
        print(f"{key:22} {value:10.2f}" if isinstance(value, float) else f"{key:22} {value:>10}")
    if args.json:
        args.json.write_text(json.dumps({**result, **this_cpu().to_json()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
