"""Load and soak: how many escalations a second the cloud service sustains, and whether it leaks.

On loopback ports: a redis-server (AOF, as the service requires), tritonserver serving the echo model,
and one, then two, ``cloud-service serve`` replicas. Simulated devices (:mod:`bench.loadbench.traffic`)
send escalations at increasing rates (open loop, each step bounded in time) while uploading outcome
batches and holding policy watches. The sustained rate is the highest step answered with no errors, at
>= 95% of its rate, with p99 within ``--p99-bound-ms``. Then a soak at half that rate, with the resident
memory (RSS) of every process read before and after it. Two replicas are reached through client-side
round robin (each device channel connects to both), the load balancer of a gRPC fleet.

    python -m bench.load [--quick] [--json PATH] [--p99-bound-ms MS] [--soak-s S]

Every process shares this machine's cores, the load generator included: on a 2-core box the scale-out
ratio shows the shape (does a second replica add capacity or only contention?), not the capacity of a
real deployment. Devices are not authenticated (the service has no device identity yet).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from bench.cloudbench.processes import EchoTriton, RedisProcess, ServiceProcess, ServiceSettings
from bench.cpu import this_cpu
from bench.loadbench.traffic import Devices, Step, background, open_loop

MB = 1024 * 1024


def _log(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    rates: tuple[float, ...]
    step_s: float
    soak_s: float
    p99_bound_ms: float
    channels: int
    uploads_per_s: float
    records_per_upload: int
    watches: int


QUICK = Options(rates=(25, 50, 100, 200, 400), step_s=2.0, soak_s=10.0, p99_bound_ms=250.0, channels=8,
                uploads_per_s=5.0, records_per_upload=50, watches=50)
FULL = Options(rates=(25, 50, 100, 150, 200, 300, 400, 600, 800, 1200), step_s=5.0, soak_s=60.0,
               p99_bound_ms=250.0, channels=16, uploads_per_s=10.0, records_per_upload=100, watches=200)


def sustained(step: Step, bound_ms: float) -> bool:
    return step.errors == 0 and step.answered_rps >= 0.95 * step.rate and step.p99_ms <= bound_ms


async def ramp(target: str, options: Options) -> list[Step]:
    """Rate steps until one is not sustained (that one is kept, to show where it broke)."""
    devices = Devices(target, options.channels, uuid.uuid4().hex[:8])
    stop = asyncio.Event()
    traffic = asyncio.create_task(background(devices, options.uploads_per_s, options.records_per_upload,
                                             options.watches, stop))
    steps: list[Step] = []
    try:
        await open_loop(devices, options.rates[0], 1.0)  # warm-up: channels connected, scripts loaded
        for rate in options.rates:
            step = await open_loop(devices, rate, options.step_s)
            steps.append(step)
            _log(f"  {rate:g}/s: p99 {step.p99_ms:.1f} ms, {step.answered_rps:.0f} answered/s, {step.errors} errors")
            if not sustained(step, options.p99_bound_ms):
                break
    finally:
        stop.set()
        await traffic
        await devices.close()
    return steps


async def soak(target: str, rate: float, options: Options) -> Step:
    devices = Devices(target, options.channels, uuid.uuid4().hex[:8])
    stop = asyncio.Event()
    traffic = asyncio.create_task(background(devices, options.uploads_per_s, options.records_per_upload,
                                             options.watches, stop))
    try:
        return await open_loop(devices, rate, options.soak_s)
    finally:
        stop.set()
        await traffic
        await devices.close()


def rss_mb(pids: dict[str, int]) -> dict[str, float]:
    """Resident memory of each process and its children (Triton's model stubs), in MB."""
    sizes = {}
    for name, pid in pids.items():
        process = psutil.Process(pid)
        total = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
        sizes[name] = round(total / MB, 1)
    return sizes


def max_sustained(steps: Sequence[Step], bound_ms: float) -> Step | None:
    good = [step for step in steps if sustained(step, bound_ms)]
    return good[-1] if good else None


def run(options: Options, backend_python: Path | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        _log("starting redis-server (AOF) and tritonserver (echo)")
        redis = stack.enter_context(RedisProcess())
        triton = stack.enter_context(EchoTriton(backend_python))
        settings = ServiceSettings(triton_url=triton.grpc_url, redis_url=redis.url, log_level="WARNING")
        for replicas in (1, 2):
            with ExitStack() as services:
                started = [services.enter_context(ServiceProcess(settings)) for _ in range(replicas)]
                target = started[0].address if replicas == 1 else "ipv4:" + ",".join(s.address for s in started)
                _log(f"{replicas} replica(s): ramp {options.rates} /s, {options.step_s:g} s each")
                steps = asyncio.run(ramp(target, options))
                best = max_sustained(steps, options.p99_bound_ms)
                results[f"replicas_{replicas}"] = ramp_summary(steps, best)
                if replicas == 1:
                    pids = {"service": started[0].pid, "triton": triton.pid, "redis": redis.pid,
                            "load_generator": os.getpid()}
                    results["soak"] = soak_with_memory(target, best.rate / 2 if best else options.rates[0], options,
                                                       pids)
    return results


def ramp_summary(steps: Sequence[Step], best: Step | None) -> dict[str, Any]:
    """``errors``: in the steps up to the sustained one (0 by definition unless none was sustained);
    ``errors_past_max``: in the step that broke (refusals with RESOURCE_EXHAUSTED, deadlines)."""
    kept = [s for s in steps if best is not None and s.rate <= best.rate]
    return {"steps": [s.to_json() for s in steps], "max_sustained_rps": best.rate if best else 0.0,
            "p99_ms_at_max": round(best.p99_ms, 2) if best else None,
            "errors": sum(s.errors for s in kept) if best else sum(s.errors for s in steps),
            "errors_past_max": sum(s.errors for s in steps if best is None or s.rate > best.rate)}


def soak_with_memory(target: str, rate: float, options: Options, pids: dict[str, int]) -> dict[str, Any]:
    _log(f"soak at {rate:g}/s for {options.soak_s:g} s")
    before = rss_mb(pids)
    step = asyncio.run(soak(target, rate, options))
    after = rss_mb(pids)
    growth = {name: round(after[name] - before[name], 1) for name in pids}
    return {"rate": rate, "duration_s": options.soak_s, "step": step.to_json(), "rss_mb_before": before,
            "rss_mb_after": after, "rss_growth_mb": growth}


def summary(results: dict[str, Any], options: Options) -> dict[str, Any]:
    one, two, soaked = results["replicas_1"], results["replicas_2"], results["soak"]
    return {
        "max_sustained_rps": one["max_sustained_rps"],
        "p99_ms_at_max": one["p99_ms_at_max"],
        "errors": one["errors"] + soaked["step"]["errors"],
        "rss_growth_mb": max(soaked["rss_growth_mb"].values()),
        "scale_out_ratio": round(two["max_sustained_rps"] / one["max_sustained_rps"], 3)
        if one["max_sustained_rps"] else None,
        "max_sustained_rps_2_replicas": two["max_sustained_rps"],
        "errors_past_max": one["errors_past_max"],
        "p99_bound_ms": options.p99_bound_ms,
        **results,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.machine()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s steps up to 400/s, a 10 s soak")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    parser.add_argument("--p99-bound-ms", type=float, default=None)
    parser.add_argument("--soak-s", type=float, default=None)
    parser.add_argument("--backend-python", type=Path, default=None, help="default: $CONFROUTE_TRITON_PYTHON")
    args = parser.parse_args(argv)
    options = QUICK if args.quick else FULL
    if args.p99_bound_ms is not None or args.soak_s is not None:
        options = replace(options, p99_bound_ms=args.p99_bound_ms or options.p99_bound_ms,
                          soak_s=args.soak_s or options.soak_s)
    python = args.backend_python or (Path(p) if (p := os.environ.get("CONFROUTE_TRITON_PYTHON")) else None)
    result = summary(run(options, python), options) | this_cpu().to_json()
    text = json.dumps(result, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n")
    print(json.dumps({k: result[k] for k in ("max_sustained_rps", "p99_ms_at_max", "errors", "rss_growth_mb",
                                             "scale_out_ratio", "max_sustained_rps_2_replicas")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
