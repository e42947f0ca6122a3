"""Fleet benchmark: policy fan-out to many watching devices, and recalibration over 1M outcomes (hook).

Fan-out, at each fleet size, on loopback: a redis-server, the fleet server as its own process (the
production ``build_server`` and FleetServicer on the Redis policy store, ``bench.fleetbench.server``)
and watcher processes (``bench.fleetbench.watchers``), each holding thousands of ``WatchPolicy`` streams
over a few channels, all opened at once as a fleet does after an outage. Measured:

- ``connected``: streams that received the current policy after the burst (every one should);
- server memory per watcher: the server's RSS growth over the burst divided by the connected streams;
- the server's CPU time per delivered update (from its kernel counters), which other load on the machine
  does not change the way it changes wall-clock delays;
- fan-out: a new version is published to Redis; the time until 99 % of the streams have it (wall clock
  across processes on one machine), and the time until the last one has it; repeated for a few rounds
  (the median is reported, each round's p99 too, since other load on the machine moves single rounds);
- the floor, measured the same way in the same run: ``bench.fleetbench.floor``, a bare grpc.aio server
  that pushes one shared pre-built message to the same number of watchers over the same channels (no
  Redis, store, interceptor or per-watcher work). Absolute delays on shared CPUs do not transfer between
  machines; the ratio to the floor does.

Every process shares this machine's cores, so the numbers include the clients' own scheduling delays.
Recalibration: ``bench.fleetbench.recalibrate.measure_recalibration(n_outcomes) -> seconds`` when that
module exists (written with the recalibration worker), else null.

    python -m bench.fleet [--quick] [--json PATH] [--sizes 10000,40000]

JSON keys: ``fanout_p99_s_<k>``, ``fanout_max_s_<k>``, ``connected_<k>``, ``kb_per_watcher_<k>`` for each
size (k = thousands), and for the floor ``fanout_floor_p99_s_<k>``, ``fanout_floor_max_s_<k>``,
``connected_floor_<k>``, ``fanout_vs_floor_p99_<k>``; ``kb_per_watcher`` (at the largest size),
``recalibrate_1m_s`` (null unless ``--recalibrate-outcomes`` is the default million; ``recalibrate_s`` and
``recalibrate_outcomes`` always), ``cpu_model``/``cpu_isa``/``cpu_features``. Targets: p99 <= 1.3x the
floor's at each size, every watcher connected, <= 30 KB per watcher, recalibration <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import psutil

from bench.cloudbench.processes import RedisProcess, cpu_seconds
from bench.cpu import this_cpu
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds
from confroute.v1 import fleet_pb2

ROOT = Path(__file__).resolve().parents[1]
EDGE_MODEL = ModelRef("bench-edge", "bench-1")  # as bench.fleetbench.watchers asks for
PER_PROCESS = 5_000  # watchers per client process: receiving is the clients' bottleneck, not the server's
CHANNELS_PER_PROCESS = 25
FLOOR_RATIO_TARGET = 1.3  # p99 at most this multiple of the floor's, measured in the same run
KB_TARGET = 30.0
ONE_MILLION = 1_000_000


@dataclass(frozen=True)
class FanOut:
    watchers: int
    connected: int
    kb_per_watcher: float
    p99_s: float | None  # median over the rounds
    max_s: float | None  # median over the rounds
    p99_rounds: tuple[float | None, ...]
    errors: dict[str, int]
    server_cpu_us: float  # server CPU time per delivered update, from publish to the last delivery


def policy(version: str, cohort: str, pre: float) -> Policy:
    return Policy(version, EDGE_MODEL, cohort, RoutingMode.PRE, Thresholds(pre, 0.6, 0.3, 0.8),
                  issued_at=datetime.now(timezone.utc))


async def publish(redis_url: str, p: Policy) -> None:
    store = RedisPolicyStore(PolicyStoreConfig(url=redis_url))
    try:
        await store.publish(p)
    finally:
        await store.close()


def response_bytes(p: Policy) -> bytes:
    """The serialized ``WatchPolicyResponse`` for ``p``: what the service sends each watcher."""
    message: bytes = fleet_pb2.WatchPolicyResponse(policy=p.to_pb()).SerializeToString()
    return message


class Publisher:
    """The server the watchers watch: the fleet server (a policy published to Redis reaches them) or the
    floor (``bench.fleetbench.floor``: the pre-built message, handed over on its stdin, is pushed as is)."""

    def __init__(self, redis_url: str, floor: bool, first: Policy) -> None:
        self._redis_url = redis_url
        self.floor = floor
        if floor:
            argv = [sys.executable, "-m", "bench.fleetbench.floor", "--initial", response_bytes(first).hex()]
        else:
            asyncio.run(publish(redis_url, first))
            argv = [sys.executable, "-m", "bench.fleetbench.server", "--redis-url", redis_url]
        self.process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                        stdin=subprocess.PIPE if floor else subprocess.DEVNULL)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("port "):
            self.process.kill()
            raise RuntimeError(f"the {'floor' if floor else 'fleet'} server did not start: {line!r}")
        self.port = int(line.split()[1])

    def publish(self, p: Policy) -> float:
        """Publishes ``p``; returns the wall-clock time the publication started (delays count from it)."""
        published_at = time.time()
        if self.floor:
            assert self.process.stdin is not None
            self.process.stdin.write(response_bytes(p).hex() + "\n")
            self.process.stdin.flush()
        else:
            asyncio.run(publish(self._redis_url, p))
        return published_at

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def start_watchers(port: int, count: int, cohort: str, initial: str, new: str) -> list[subprocess.Popen[str]]:
    processes = []
    for index, start in enumerate(range(0, count, PER_PROCESS)):
        n = min(PER_PROCESS, count - start)
        argv = [sys.executable, "-m", "bench.fleetbench.watchers", "--target", f"127.0.0.1:{port}",
                "--count", str(n), "--channels", str(CHANNELS_PER_PROCESS), "--prefix", f"d{index}",
                "--cohort", cohort, "--initial", initial, "--new", new]
        processes.append(subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True))
    return processes


def read_json(stream: IO[str] | None) -> dict[str, Any]:
    assert stream is not None
    line = stream.readline()
    if not line:
        raise RuntimeError("a watcher process ended early")
    value: dict[str, Any] = json.loads(line)
    return value


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def measure_fanout(redis_url: str, watchers: int, rounds: int, floor: bool = False) -> FanOut:
    """Burst-connects ``watchers`` to the fleet server (or, with ``floor``, to the floor) and times ``rounds``
    publications reaching them."""
    cohort = f"bench-{watchers}{'-floor' if floor else ''}"
    versions = [f"v{i + 2}" for i in range(rounds)]
    target = Publisher(redis_url, floor, policy("v1", cohort, 0.5))
    server = target.process
    clients: list[subprocess.Popen[str]] = []
    try:
        time.sleep(0.5)
        before = rss(server.pid)
        clients = start_watchers(target.port, watchers, cohort, "v1", ",".join(versions))
        reports = [read_json(c.stdout) for c in clients]
        connected = sum(r["connected"] for r in reports)
        time.sleep(1.0)  # let the server settle before reading its memory
        after = rss(server.pid)
        cpu_before = cpu_seconds(server.pid)
        delays = []
        for index, version in enumerate(versions):
            time.sleep(0.5)  # a quiet moment between rounds
            published_at = target.publish(policy(version, cohort, 0.45 - index * 0.01))
            round_reports = [read_json(c.stdout) for c in clients]
            reports += round_reports
            delays.append(sorted(t - published_at for r in round_reports for t in r["received"]))
        cpu_used = cpu_seconds(server.pid) - cpu_before
    finally:
        for client in clients:
            client.wait(timeout=60)
        target.stop()
    errors: dict[str, int] = {}
    for report in reports:
        for code, n in report["errors"].items():
            errors[code] = max(errors.get(code, 0), n)
    p99s = tuple(_quantile(d, watchers, 0.99) for d in delays)
    maxes = tuple(_quantile(d, watchers, 1.0) for d in delays)
    delivered = sum(len(d) for d in delays)
    return FanOut(watchers, connected, (after - before) / max(connected, 1) / 1024, _median(p99s), _median(maxes),
                  p99s, errors, cpu_used / max(delivered, 1) * 1e6)


def _median(values: Sequence[float | None]) -> float | None:
    """The median, counting a round that never completed (None) as the slowest."""
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    return ordered[len(ordered) // 2] if ordered else None


def _quantile(delays: Sequence[float], population: int, q: float) -> float | None:
    """The time by which a share q of *all* watchers had the update (None if fewer ever did)."""
    needed = math.ceil(q * population)
    return delays[needed - 1] if 0 < needed <= len(delays) else None


def measure_recalibration(n_outcomes: int) -> float | None:
    """``bench.fleetbench.recalibrate.measure_recalibration`` when it exists (recalibration worker)."""
    try:
        module = importlib.import_module("bench.fleetbench.recalibrate")
    except ModuleNotFoundError:
        return None
    seconds: float = module.measure_recalibration(n_outcomes)
    return seconds


def _ratio(value: float | None, floor: float | None) -> float | None:
    return round(value / floor, 3) if value is not None and floor else None


def report(results: list[FanOut], recalibrate_s: float | None, outcomes: int = ONE_MILLION,
           floors: Sequence[FanOut] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in results:
        k = f"{r.watchers // 1000}k"
        out |= {f"fanout_p99_s_{k}": r.p99_s, f"fanout_max_s_{k}": r.max_s, f"connected_{k}": r.connected,
                f"kb_per_watcher_{k}": round(r.kb_per_watcher, 2), f"errors_{k}": r.errors,
                f"fanout_p99_rounds_s_{k}": r.p99_rounds,
                f"server_cpu_us_per_update_{k}": round(r.server_cpu_us, 1)}
    for f in floors:
        k = f"{f.watchers // 1000}k"
        out |= {f"fanout_floor_p99_s_{k}": f.p99_s, f"fanout_floor_max_s_{k}": f.max_s,
                f"connected_floor_{k}": f.connected, f"fanout_floor_p99_rounds_s_{k}": f.p99_rounds,
                f"floor_cpu_us_per_update_{k}": round(f.server_cpu_us, 1),
                f"fanout_vs_floor_p99_{k}": _ratio(out.get(f"fanout_p99_s_{k}"), f.p99_s)}
    out["kb_per_watcher"] = round(results[-1].kb_per_watcher, 2) if results else None
    out["recalibrate_1m_s"] = recalibrate_s if outcomes == ONE_MILLION else None
    out["recalibrate_s"], out["recalibrate_outcomes"] = recalibrate_s, outcomes
    return out


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_table(results: list[FanOut], recalibrate_s: float | None, floors: Sequence[FanOut] = ()) -> None:
    floor_of = {f.watchers: f for f in floors}
    print(f"{'watchers':>9} {'connected':>10} {'KB/watcher':>11} {'p99 s':>7} {'max s':>7} {'CPU us/upd':>10} "
          f"{'floor p99':>9} {'floor CPU':>9} {'p99/floor':>9}  target")
    for r in results:
        f = floor_of.get(r.watchers)
        ratio = _ratio(r.p99_s, f.p99_s if f else None)
        floor_cells = (f"{_seconds(f.p99_s):>9} {f.server_cpu_us:>9.1f} {'-' if ratio is None else f'{ratio:.2f}':>9}"
                       if f else f"{'-':>9} {'-':>9} {'-':>9}")
        met = ratio is not None and ratio <= FLOOR_RATIO_TARGET and r.connected == r.watchers
        verdict = f"  <= {FLOOR_RATIO_TARGET:g}x floor, all connected: {'met' if met else 'MISSED'}" if f else ""
        print(f"{r.watchers:>9} {r.connected:>10} {r.kb_per_watcher:>11.1f} {_seconds(r.p99_s):>7} "
              f"{_seconds(r.max_s):>7} {r.server_cpu_us:>10.1f} {floor_cells}{verdict}"
              + (f"  errors {r.errors}" if r.errors else "") + (f"  floor errors {f.errors}" if f and f.errors else ""))
    print(f"recalibration over 1M outcomes: {'n/a (no hook)' if recalibrate_s is None else f'{recalibrate_s:.3f} s'}"
          f"; targets: p99 <= {FLOOR_RATIO_TARGET:g}x the floor's, every watcher connected, <= {KB_TARGET:g} KB per "
          f"watcher, <= 1 s recalibration; on {this_cpu().label()}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 and 5,000 watchers")
    parser.add_argument("--sizes", default=None, help="comma-separated watcher counts (default 10000,40000)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-recalibration", action="store_true")
    parser.add_argument("--skip-floor", action="store_true", help="do not measure the bare fan-out floor")
    parser.add_argument("--recalibrate-outcomes", type=int, default=ONE_MILLION,
                        help="outcomes the recalibration reads (default 1,000,000; fewer: a smoke run)")
    parser.add_argument("--rounds", type=int, default=None, help="updates published per size (default 3, quick 2)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([2_000, 5_000] if args.quick
                                                                        else [10_000, 40_000])
    rounds = args.rounds or (2 if args.quick else 3)
    results, floors = [], []
    with RedisProcess() as redis:
        for index, size in enumerate(sizes):
            floor_first = index % 2 == 1  # every other size: a load that changes through the run hits both alike
            if floor_first and not args.skip_floor:
                floors.append(measure_fanout(redis.url, size, rounds, floor=True))
            results.append(measure_fanout(redis.url, size, rounds))
            if not floor_first and not args.skip_floor:
                floors.append(measure_fanout(redis.url, size, rounds, floor=True))
            print(f"{size} watchers done (load average {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    recalibrate_s = None if args.skip_recalibration else measure_recalibration(args.recalibrate_outcomes)
    print_table(results, recalibrate_s, floors)
    if args.json is not None:
        summary = {**report(results, recalibrate_s, args.recalibrate_outcomes, floors), **this_cpu().to_json()}
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
