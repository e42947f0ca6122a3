"""Back-pressure: the bar for escalating rises one step while any load signal is over its high mark, holds
between the marks, falls back when every signal is low; the controller publishes each change as a new
version with a history entry and a metric, reading Triton's real Prometheus text over HTTP."""

from __future__ import annotations

import asyncio
import http.server
import math
import threading
from collections.abc import Coroutine, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar

import pytest

from cloud_service.metrics import create_metrics
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.policies.backpressure import BackpressureController, BackpressureSettings, Load, next_shift
from cloud_service.policies.load_metrics import PrometheusLoadSource, parse_triton, queue_ms_between
from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds
from tests.cloud_service.redis_server import RedisServer

T = TypeVar("T")
SETTINGS = BackpressureSettings(queue_high_ms=50, queue_low_ms=10, pending_high=32, pending_low=4,
                                inflight_high=48, inflight_low=16, step=0.05, max_shift=0.1)
CALM = Load(queue_ms=1.0, pending=0, inflight=2)
BUSY = Load(queue_ms=80.0, pending=3, inflight=2)
BETWEEN = Load(queue_ms=30.0, pending=3, inflight=2)


def test_overload_raises_the_bar_one_step_at_a_time_up_to_the_maximum() -> None:
    first = next_shift(0.0, BUSY, SETTINGS)
    assert first.shift == 0.05 and "queue 80ms > 50ms" in first.reason
    assert next_shift(0.05, BUSY, SETTINGS).shift == 0.1
    assert next_shift(0.1, BUSY, SETTINGS).shift == 0.1


def test_between_the_marks_the_shift_holds() -> None:
    assert next_shift(0.05, BETWEEN, SETTINGS).shift == 0.05
    assert next_shift(0.0, BETWEEN, SETTINGS).shift == 0.0


def test_only_when_every_signal_is_low_does_it_come_down() -> None:
    assert next_shift(0.1, CALM, SETTINGS).shift == 0.05
    assert next_shift(0.05, Load(queue_ms=1.0, pending=10, inflight=2), SETTINGS).shift == 0.05
    assert next_shift(0.0, CALM, SETTINGS).shift == 0.0


def test_any_signal_alone_can_trigger_it_and_unknown_signals_are_ignored() -> None:
    assert next_shift(0.0, Load(queue_ms=math.nan, pending=40, inflight=math.nan), SETTINGS).shift == 0.05
    assert next_shift(0.0, Load(queue_ms=0, pending=0, inflight=60), SETTINGS).shift == 0.05
    unknown = next_shift(0.05, Load(math.nan, math.nan, math.nan), SETTINGS)
    assert unknown.shift == 0.05 and "unknown" in unknown.reason


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        BackpressureSettings(queue_low_ms=60, queue_high_ms=50)
    with pytest.raises(ValueError):
        BackpressureSettings(step=0.3, max_shift=0.2)


TRITON_TEXT = """# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{{model="llm",version="1"}} {queue}
nv_inference_queue_duration_us{{model="echo",version="1"}} 999999
# HELP nv_inference_request_success Number of successful inference requests
# TYPE nv_inference_request_success counter
nv_inference_request_success{{model="llm",version="1"}} {requests}
nv_inference_request_success{{model="echo",version="1"}} 5
# HELP nv_inference_pending_request_count Instantaneous number of pending requests
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{{model="llm",version="1"}} {pending}
"""


def test_triton_text_is_parsed_per_model_and_queue_time_comes_from_two_samples() -> None:
    before = parse_triton(TRITON_TEXT.format(queue=1000, requests=10, pending=2), model="llm")
    after = parse_triton(TRITON_TEXT.format(queue=801000, requests=20, pending=7), model="llm")
    assert (after.queue_us, after.requests, after.pending) == (801000, 20, 7)
    assert queue_ms_between(before, after) == pytest.approx(80.0)
    assert math.isnan(queue_ms_between(None, after))
    assert math.isnan(queue_ms_between(after, before))  # counters went backwards: Triton restarted
    assert parse_triton(TRITON_TEXT.format(queue=0, requests=0, pending=1)).pending == 1  # all models


class MetricsText:
    """A loopback HTTP server whose /metrics body a test sets."""

    def __init__(self) -> None:
        self.body = ""
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = owner.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def triton_metrics() -> Iterator[MetricsText]:
    endpoint = MetricsText()
    yield endpoint
    endpoint.close()


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 30))


EDGE = ModelRef("smollm2", "b1")


def test_the_controller_publishes_each_adjustment_and_restores_the_policy(
    redis_server: RedisServer, triton_metrics: MetricsText
) -> None:
    metrics = create_metrics()
    base = Policy("v1", EDGE, "beta", RoutingMode.PRE, Thresholds(0.5, 0.6, 0.3, 0.8),
                  issued_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    # (cumulative queue µs, cumulative requests, pending) at each sample
    samples = [(0, 0, 0), (800_000, 10, 0), (1_600_000, 20, 0), (1_600_000, 30, 0), (1_600_000, 40, 0)]

    async def scenario() -> tuple[list[float], list[float], list[str]]:
        store = RedisPolicyStore(PolicyStoreConfig(url=redis_server.url))
        source = PrometheusLoadSource(triton_metrics.url, model="llm")
        controller = BackpressureController(store, [("b1", "beta")], source, SETTINGS,
                                            on_adjust=metrics.observe_threshold_shift)
        try:
            await store.publish(base)
            shifts, pres = [], []
            for queue, requests, pending in samples:
                triton_metrics.body = TRITON_TEXT.format(queue=queue, requests=requests, pending=pending)
                await controller.step()
                current = await store.current("b1", "beta")
                assert current is not None
                shifts.append(controller.shift)
                pres.append(current.thresholds.pre)
            history = [h.action for h in await store.history("b1", "beta")]
            return shifts, pres, history
        finally:
            await store.close()

    shifts, pres, history = run(scenario())
    assert shifts == [0.0, 0.05, 0.1, 0.05, 0.0]
    assert pres == pytest.approx([0.5, 0.45, 0.4, 0.45, 0.5])
    assert history == ["restore", "backpressure", "backpressure", "backpressure", "publish"]
    registry = metrics.registry
    assert registry.get_sample_value("confroute_policy_threshold_shift", {"edge_model_version": "b1",
                                                                         "cohort": "beta"}) == 0.0
    raised = registry.get_sample_value("confroute_policy_backpressure_adjustments_total",
                                       {"edge_model_version": "b1", "cohort": "beta", "direction": "raise"})
    assert raised == 2


def test_an_unreachable_endpoint_holds_the_shift(redis_server: RedisServer) -> None:
    async def scenario() -> float:
        store = RedisPolicyStore(PolicyStoreConfig(url=redis_server.url))
        source = PrometheusLoadSource("http://127.0.0.1:1/metrics", timeout_s=0.5)
        controller = BackpressureController(store, [("b1", "beta")], source, SETTINGS)
        try:
            controller.shift = 0.05
            await controller.step()
            return controller.shift
        finally:
            await store.close()

    assert run(scenario()) == 0.05
