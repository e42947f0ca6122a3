"""Reading the load from Prometheus endpoints: Triton's ``/metrics`` and the service's own.

Triton exports cumulative counters, so the queue time per request comes from two samples:
``d(nv_inference_queue_duration_us) / d(nv_inference_request_success)`` over the interval (summed over
models, or only ``model`` when given). ``nv_inference_pending_request_count`` and the service's
``confroute_escalations_inflight`` are gauges. An endpoint that cannot be read gives NaN for its
signals (ignored by the decision), never an exception.
"""

from __future__ import annotations

import asyncio
import logging
import math
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from cloud_service.policies.backpressure import Load

logger = logging.getLogger(__name__)

QUEUE_US = "nv_inference_queue_duration_us"
REQUESTS = "nv_inference_request_success"
PENDING = "nv_inference_pending_request_count"
INFLIGHT = "confroute_escalations_inflight"


@dataclass(frozen=True)
class TritonSample:
    """Cumulative queue time and requests, and pending requests now."""

    queue_us: float
    requests: float
    pending: float


def parse_triton(text: str, model: str = "") -> TritonSample:
    """The sums over models (or ``model`` only) of Triton's queue, request and pending metrics."""
    sums = {QUEUE_US: 0.0, REQUESTS: 0.0, PENDING: 0.0}
    for name, value in _samples(text, model):
        if name in sums:
            sums[name] += value
    return TritonSample(sums[QUEUE_US], sums[REQUESTS], sums[PENDING])


def parse_inflight(text: str) -> float:
    """The service's escalations in flight (NaN when it does not export them)."""
    values = [value for name, value in _samples(text, "") if name == INFLIGHT]
    return sum(values) if values else math.nan


def queue_ms_between(before: TritonSample | None, after: TritonSample) -> float:
    """Mean queue time per request over the interval; 0 when no request finished, NaN without a baseline or
    when the counters went backwards (Triton restarted)."""
    if before is None:
        return math.nan
    requests, queued = after.requests - before.requests, after.queue_us - before.queue_us
    if requests < 0 or queued < 0:
        return math.nan
    return queued / requests / 1000.0 if requests else 0.0


class PrometheusLoadSource:
    """A :data:`~cloud_service.policies.backpressure.LoadSource` over Triton's and the services' endpoints."""

    def __init__(self, triton_url: str, service_urls: Iterable[str] = (), model: str = "",
                 timeout_s: float = 2.0) -> None:
        self._triton_url = triton_url
        self._service_urls = tuple(service_urls)
        self._model = model
        self._timeout_s = timeout_s
        self._last: TritonSample | None = None

    async def __call__(self) -> Load:
        triton_text = await self._fetch(self._triton_url)
        if triton_text is None:
            queue_ms = pending = math.nan
        else:
            sample = parse_triton(triton_text, self._model)
            queue_ms, self._last = queue_ms_between(self._last, sample), sample
            pending = sample.pending
        inflight_values = [parse_inflight(text) for text in await asyncio.gather(
            *(self._fetch(url) for url in self._service_urls)) if text is not None]
        known = [value for value in inflight_values if not math.isnan(value)]
        return Load(queue_ms=queue_ms, pending=pending, inflight=sum(known) if known else math.nan)

    async def _fetch(self, url: str) -> str | None:
        try:
            return await asyncio.to_thread(_get, url, self._timeout_s)
        except (OSError, ValueError) as exc:
            logger.debug("cannot read metrics from %s: %s", url, exc)
            return None


def _get(url: str, timeout_s: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        body: bytes = response.read()
    return body.decode("utf-8", "replace")


def _samples(text: str, model: str) -> list[tuple[str, float]]:
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if model and sample.labels.get("model", model) != model:
                continue
            if sample.name not in (family.name, family.name + "_total"):
                continue  # _created, _bucket, ...
            # The parser names a counter's samples NAME_total even where the exporter (Triton) wrote NAME.
            out.append((family.name, float(sample.value)))
    return out
