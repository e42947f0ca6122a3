"""Simulated devices on loopback: escalations at a fixed rate (open loop), outcome uploads at a fixed rate,
and policy watches held open, all over a few gRPC channels as a fleet's devices would spread them.

An open loop sends on schedule whether or not earlier calls returned, so a service that falls behind shows
it as latency and errors rather than as a politely lower request rate (a closed loop would hide it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from bench.cloudbench.load import escalation
from bench.cloudbench.outcome_log import sample_records
from confroute.contract import OutcomeBatch
from confroute.v1 import common_pb2, escalation_pb2, escalation_pb2_grpc, fleet_pb2, fleet_pb2_grpc, outcomes_pb2_grpc

DEADLINE_S = 5.0
MAX_TOKENS = 16


@dataclass
class Step:
    """What one rate step produced."""

    rate: float
    duration_s: float
    sent: int = 0
    errors: int = 0
    first_error: str = ""
    latencies_s: list[float] = field(default_factory=list)

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_s, 99) * 1000) if self.latencies_s else float("inf")

    @property
    def answered_rps(self) -> float:
        return len(self.latencies_s) / self.duration_s

    def to_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "sent": self.sent, "answered_rps": round(self.answered_rps, 1),
                "errors": self.errors, "p50_ms": round(float(np.percentile(self.latencies_s, 50)) * 1000, 2)
                if self.latencies_s else None, "p99_ms": round(self.p99_ms, 2), "first_error": self.first_error}


class Devices:
    """``channels`` gRPC channels to ``target`` (``host:port``, or ``ipv4:a:p,b:q`` for client-side round
    robin over replicas), shared by every simulated device."""

    def __init__(self, target: str, channels: int, run_id: str) -> None:
        options = [("grpc.lb_policy_name", "round_robin")] if "," in target else []
        self._channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(channels)]
        self._escalate = [escalation_pb2_grpc.EscalationServiceStub(c) for c in self._channels]  # type: ignore[no-untyped-call]
        self._outcomes = [outcomes_pb2_grpc.OutcomesServiceStub(c) for c in self._channels]  # type: ignore[no-untyped-call]
        self._fleet = [fleet_pb2_grpc.FleetServiceStub(c) for c in self._channels]  # type: ignore[no-untyped-call]
        self._template = escalation(MAX_TOKENS).to_pb()
        self._ids = itertools.count()
        self._run = run_id
        self.upload_errors = 0
        self.uploaded = 0

    async def escalate(self) -> None:
        n = next(self._ids)
        message = escalation_pb2.EscalateRequest(escalation=self._template)
        message.escalation.query_id = f"load-{self._run}-{n}"
        message.escalation.device_id = f"device-{n % 1000}"
        await self._escalate[n % len(self._escalate)].Escalate(message, timeout=DEADLINE_S)

    async def upload(self, records: int) -> None:
        n = next(self._ids)
        batch = OutcomeBatch(f"b-{self._run}-{n}", tuple(sample_records(f"up-{self._run}-{n}", records)))
        try:
            async for reply in self._outcomes[n % len(self._outcomes)].UploadOutcomes(
                    _one(batch.to_pb()), timeout=DEADLINE_S):
                self.uploaded += reply.stored + len(reply.duplicate_query_ids)
        except grpc.aio.AioRpcError:
            self.upload_errors += 1

    async def watch(self, device: int) -> None:
        request = fleet_pb2.WatchPolicyRequest(edge_model=common_pb2.ModelRef(id="smollm2-135m", version="bench"),
                                               cohort="bench", device_id=f"watcher-{device}")
        stub = self._fleet[device % len(self._fleet)]
        while True:  # held until cancelled; a stream the server ends is opened again
            try:
                async for _ in stub.WatchPolicy(request):
                    pass
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


async def _one(message: Any) -> Any:
    yield message


async def open_loop(devices: Devices, rate: float, duration_s: float) -> Step:
    """Escalations at ``rate`` per second for ``duration_s``, each on schedule; waits for the stragglers."""
    step = Step(rate, duration_s)
    tasks: list[asyncio.Task[None]] = []

    async def one() -> None:
        started = time.perf_counter()
        try:
            await devices.escalate()
        except grpc.aio.AioRpcError as exc:
            step.errors += 1
            step.first_error = step.first_error or f"{exc.code().name}: {exc.details()}"
            return
        step.latencies_s.append(time.perf_counter() - started)

    begin = time.perf_counter()
    for i in itertools.count():
        due = begin + i / rate
        if due - begin >= duration_s:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
        step.sent += 1
    await asyncio.gather(*tasks)
    return step


async def background(devices: Devices, uploads_per_s: float, records_per_upload: int, watches: int,
                     stop: asyncio.Event) -> None:
    """Uploads at ``uploads_per_s`` and ``watches`` held watches, until ``stop`` is set."""
    watchers = [asyncio.create_task(devices.watch(i)) for i in range(watches)]
    uploads: list[asyncio.Task[None]] = []
    try:
        while not stop.is_set():
            uploads.append(asyncio.create_task(devices.upload(records_per_upload)))
            uploads = [task for task in uploads if not task.done()]
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0 / uploads_per_s)
        await asyncio.gather(*uploads)
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
