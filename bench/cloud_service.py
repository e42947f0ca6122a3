"""Cloud service benchmark: the echo model behind Triton, called directly and through the cloud service.

In one run, on loopback ports: a redis-server, a tritonserver serving only the echo model (so that the
model does not dominate), and the service as a separate process (``python -m cloud_service.cli serve``).
A grpc.aio / tritonclient.aio load generator in this process measures p50/p99 latency and throughput at
concurrency 1 and 32, direct and through the service alternately in rounds (the order flips every round,
so that load changes hit both alike), and through a bare grpc.aio proxy (:mod:`bench.cloudbench.bare_proxy`:
the floor any Python gRPC service in front of Triton pays). The service runs as in production: every
call authenticated (the bearer token of one of ``--devices`` enrolled devices, in turn), each device's
escalation rate checked against its Redis bucket (a rate set never to refuse; tokens leased ahead of use for busy
devices, as in production), every escalation logged to the outcome
stream. The service's CPU time per escalation comes from its own kernel counters over the service
windows; its goals are ratios to the bare proxy's in the same run (CPU <= 1.3x, req/s at c=32 >= 0.85x).
Then the outcome log's throughput into Redis: ``store()`` in batches of 1000 (statistics on) and
``record()``, against the floor, raw pipelined ``XADD`` of the same records (``store()`` >= 0.5x of it).
All processes share this machine's cores: on a small box CPU time per request decides throughput.

    python -m bench.cloud_service [--quick] [--json PATH] [--rounds N] [--window-s S] [--no-auth]
        [--profile-service PATH [--profile-native]]

The models' environment is ``--backend-python`` or ``CONFROUTE_TRITON_PYTHON`` (nvidia-pytriton, numpy<2).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cloudbench import outcome_log
from bench.cloudbench.devices import BURST_PER_DEVICE, RATE_PER_DEVICE_S, Device, enrol
from bench.cloudbench.load import BareClient, Call, DirectClient, ServiceClient, Window, closed_loop, escalation
from bench.cloudbench.processes import (
    BareProxyProcess,
    EchoTriton,
    RedisProcess,
    ServiceProcess,
    ServiceSettings,
    cpu_seconds,
    py_spy,
)
from bench.cloudbench.report import summary_json, table
from bench.cloudbench.stats import Sample, Series
from bench.cpu import this_cpu
from cloud_service.backends.prompt import render_prompt
from cloud_service.backends.triton import sampling_parameters
from confroute.contract.escalation import EscalationRequest

CONCURRENCIES = (1, 32)
PATHS = ("direct", "service", "bare")  # bare: the floor, a grpc.aio proxy that does nothing of its own
MAX_REQUESTS_PER_WINDOW = 200_000
SECRET_FILE = "identity.secret"


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    rounds: int
    window_s: float
    warmup_s: float
    idle_s: float
    max_tokens: int
    store_records: int
    record_records: int
    store_batch: int
    profile: Path | None  # a py-spy flamegraph of the service during the timed rounds
    profile_native: bool = False  # with C frames
    devices: int = 32  # enrolled devices the service calls come from (0: the service authenticates nobody)
    rate_limits: bool = True  # per-device rate limits checked in Redis (with devices)


@dataclass
class Rig:
    """What the timed windows run against, and the processes whose CPU time is read around them."""

    direct: DirectClient
    service: ServiceClient
    bare: BareClient
    pids: dict[str, tuple[int, bool]]  # name -> (pid, with its children)

    def cpu(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid, children=tree) for name, (pid, tree) in self.pids.items()}
        now["client"] = time.process_time()
        return now

    def call(self, path: str) -> Call:
        client: DirectClient | ServiceClient | BareClient = getattr(self, path)
        return client.call


async def timed(rig: Rig, path: str, concurrency: int, duration_s: float) -> Sample:
    """One window of closed-loop load on ``path`` and the CPU seconds each process spent in it."""
    before = rig.cpu()
    window: Window = await closed_loop(rig.call(path), concurrency, duration_s, MAX_REQUESTS_PER_WINDOW)
    after = rig.cpu()
    return Sample(window, {name: after[name] - before[name] for name in after})


async def idle_cpu_cores(rig: Rig, seconds: float) -> dict[str, float]:
    """Cores each process keeps busy with no requests at all (background tasks, polling)."""
    before = rig.cpu()
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    after = rig.cpu()
    return {name: (after[name] - before[name]) / elapsed for name in after if name != "client"}


async def rounds(rig: Rig, options: Options) -> list[Series]:
    """Every (path, concurrency) window ``options.rounds`` times; direct and service alternate first."""
    series = {(p, c): Series(p, c) for c in CONCURRENCIES for p in PATHS}
    for r in range(options.rounds):
        paths = PATHS if r % 2 == 0 else PATHS[::-1]
        for concurrency in CONCURRENCIES:
            for path in paths:
                sample = await timed(rig, path, concurrency, options.window_s)
                series[path, concurrency].samples.append(sample)
        rates = ", ".join(f"{p}@{c} {s.rps_per_round()[-1]:.0f}" for (p, c), s in series.items())
        _log(f"round {r + 1}/{options.rounds} req/s: {rates}")
    return list(series.values())


async def warm_up(rig: Rig, options: Options) -> dict[str, Any]:
    """Connects both paths, runs them a little, and checks that they answer the same text."""
    texts = {path: await rig.call(path)() for path in PATHS}
    if len(set(texts.values())) != 1 or not texts["direct"]:
        raise RuntimeError(f"the paths answer differently: {texts}")
    direct_text = texts["direct"]
    for path in PATHS:
        for concurrency in CONCURRENCIES:
            window = await closed_loop(rig.call(path), concurrency, options.warmup_s / 4, MAX_REQUESTS_PER_WINDOW)
            if window.errors:
                raise RuntimeError(f"warm-up of {path} at concurrency {concurrency}: {window.first_error}")
    return {"answer": direct_text}


async def latency_benchmark(rig: Rig, options: Options) -> dict[str, Any]:
    _log("warm-up")
    checks = await warm_up(rig, options)
    _log(f"idle CPU over {options.idle_s:g} s")
    idle = await idle_cpu_cores(rig, options.idle_s)
    with py_spy(rig.pids["service"][0], options.profile, native=options.profile_native):
        series = await rounds(rig, options)
    return {"series": series, "idle_cpu_cores": idle, **checks}


async def outcome_benchmark(url: str, options: Options) -> dict[str, outcome_log.Throughput]:
    run = uuid.uuid4().hex[:8]
    _log(f"outcome log: store() of {options.store_records} records in batches of {options.store_batch}")
    stored = await outcome_log.store_throughput(
        url, outcome_log.sample_records(f"s-{run}", options.store_records), options.store_batch
    )
    _log(f"outcome log: record() of {options.record_records} records")
    recorded = await outcome_log.record_throughput(url, outcome_log.sample_records(f"r-{run}", options.record_records))
    _log(f"outcome log floor: raw pipelined XADD of {options.store_records} records, batches of {options.store_batch}")
    floor = await outcome_log.floor_throughput(
        url, outcome_log.sample_records(f"f-{run}", options.store_records + options.store_batch), options.store_batch
    )
    return {"store": stored, "record": recorded, "floor": floor}


async def measure(
    triton: EchoTriton,
    service: ServiceProcess,
    bare: BareProxyProcess,
    redis_url: str,
    request: EscalationRequest,
    devices: list[Device],
    options: Options,
) -> dict[str, Any]:
    rig = Rig(
        DirectClient(triton.grpc_url, request),
        ServiceClient(service.address, request, uuid.uuid4().hex[:8], devices),
        BareClient(bare.address),
        {"service": (service.pid, False), "triton": (triton.pid, True), "bare": (bare.pid, False)},
    )
    try:
        latency = await latency_benchmark(rig, options)
        latency["service_requests_sent"] = rig.service.sent
    finally:
        await rig.direct.close()
        await rig.service.close()
        await rig.bare.close()
    latency["service_outcomes_in_redis"] = await outcome_log.wait_for_stream(redis_url, rig.service.sent)
    return {**latency, "outcomes": await outcome_benchmark(redis_url, options)}


def options_from(args: argparse.Namespace) -> Options:
    quick = bool(args.quick)
    return Options(
        rounds=args.rounds or (2 if quick else 5),
        window_s=args.window_s or (3.0 if quick else 6.0),
        warmup_s=2.0 if quick else 4.0,
        idle_s=2.0 if quick else 4.0,
        max_tokens=args.max_tokens,
        store_records=50_000 if quick else 200_000,
        record_records=50_000 if quick else 100_000,
        store_batch=1000,
        profile=args.profile_service,
        profile_native=args.profile_native,
        devices=0 if args.no_auth else args.devices,
        rate_limits=not args.no_rate_limits,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cloud_service", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s windows, fewer outcome records")
    parser.add_argument("--rounds", type=int, help="rounds of the four windows (default 5; quick 2)")
    parser.add_argument("--window-s", type=float, help="seconds per timed window (default 6; quick 3)")
    parser.add_argument("--max-tokens", type=int, default=8, help="words the echo model answers with")
    parser.add_argument("--service-log-level", default="INFO", help="the service's --log-level (default INFO)")
    parser.add_argument(
        "--profile-service",
        type=Path,
        metavar="PATH",
        help="record a py-spy profile of the service during the rounds: a flamegraph SVG, or collapsed "
        "stacks for a PATH ending in .txt (perturbs the numbers)",
    )
    parser.add_argument("--profile-native", action="store_true", help="the profile samples C frames too")
    parser.add_argument("--devices", type=int, default=32,
                        help="enrolled devices the escalations come from, each with its bearer token (default 32)")
    parser.add_argument("--no-auth", action="store_true",
                        help="the service authenticates nobody and applies no rate limits (a comparison run)")
    parser.add_argument("--no-rate-limits", action="store_true",
                        help="authenticated, but no per-device rate limit (a comparison run: what the bucket costs)")
    parser.add_argument("--backend-python", type=Path, help="the models' interpreter (CONFROUTE_TRITON_PYTHON)")
    return parser


def _meta(options: Options, service_log_level: str, load_before: tuple[float, float, float]) -> dict[str, Any]:
    """The run's conditions: another job on this box changes every number, so the load is recorded."""
    return {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()},
        "service_log_level": service_log_level,
        "cpu_count": os.cpu_count(),
        **this_cpu().to_json(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }


def run(options: Options, backend_python: Path | None, service_log_level: str) -> dict[str, Any]:
    """Starts Redis, Triton and the service, measures, and stops them all (also on Ctrl-C)."""
    with ExitStack() as stack:
        _log("starting redis-server, tritonserver (echo) and the cloud service")
        redis = stack.enter_context(RedisProcess())
        triton = stack.enter_context(EchoTriton(backend_python))
        request = escalation(options.max_tokens)
        devices = _enrol(redis, request, options.devices)
        settings = ServiceSettings(triton.grpc_url, redis.url, log_level=service_log_level)
        if devices:
            settings = dataclasses.replace(settings, identity_secret=redis.dir / SECRET_FILE,
                                           rate_escalations_per_s=RATE_PER_DEVICE_S if options.rate_limits else 0.0,
                                           rate_escalation_burst=BURST_PER_DEVICE)
        service = stack.enter_context(ServiceProcess(settings))
        prompt, parameters = render_prompt(request.messages, "chatml"), sampling_parameters(request)
        bare = stack.enter_context(BareProxyProcess(triton.grpc_url, prompt, parameters))
        return asyncio.run(measure(triton, service, bare, redis.url, request, devices, options))


def _enrol(redis: RedisProcess, request: EscalationRequest, count: int) -> list[Device]:
    """The devices the escalations come from, enrolled in the benchmark's Redis (none: no authentication)."""
    if not count:
        return []
    _log(f"enrolling {count} devices (bearer tokens; per-device rate limits on, set never to refuse)")
    return enrol(redis.url, redis.dir / SECRET_FILE, request.cohort, count, "bench-device")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = options_from(args)
    python = args.backend_python or (
        Path(os.environ["CONFROUTE_TRITON_PYTHON"]) if os.environ.get("CONFROUTE_TRITON_PYTHON") else None
    )
    load_before = os.getloadavg()
    try:
        results = run(options, python, args.service_log_level)
    except KeyboardInterrupt:
        _log("interrupted; every process it started is stopped")
        return 130
    summary = summary_json(results, _meta(options, args.service_log_level, load_before))
    print(table(results, summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
