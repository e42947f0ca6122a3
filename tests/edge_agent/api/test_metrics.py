"""``/metrics`` counts requests by status, answers by side, their latency, and unavailable escalations."""

from __future__ import annotations

import re

import openai

from edge_agent.api import ApiServer, serve_api
from edge_agent.api.metrics import CONTENT_TYPE, ApiMetrics, DeviceSnapshot
from tests.edge_agent.api.fake_answerer import MODEL_IDS, FakeAnswerer
from tests.edge_agent.api.http_helpers import call


def sample(text: str, name: str) -> float:
    """The value of one sample line (``name`` includes its labels)."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in\n{text}"
    return float(match.group(1))


def test_metrics_count_requests_answers_and_unavailable_escalations(server: ApiServer,
                                                                     client: openai.OpenAI) -> None:
    for question in ("hello", "a hard one", "offline please"):
        client.chat.completions.create(model=MODEL_IDS[0], messages=[{"role": "user", "content": question}])
    with client.chat.completions.create(model=MODEL_IDS[0], messages=[{"role": "user", "content": "hi"}],
                                        stream=True) as stream:
        list(stream)
    call(server, "POST", "/v1/chat/completions", b"{oops")
    call(server, "GET", "/nowhere")

    status, headers, text = call(server, "GET", "/metrics")

    assert status == 200 and headers["Content-Type"] == CONTENT_TYPE
    assert sample(text, 'confroute_api_requests_total{route="/v1/chat/completions",status="200"}') == 4
    assert sample(text, 'confroute_api_requests_total{route="/v1/chat/completions",status="400"}') == 1
    assert sample(text, 'confroute_api_requests_total{route="other",status="404"}') == 1
    assert sample(text, 'confroute_api_answers_total{side="edge"}') == 3
    assert sample(text, 'confroute_api_answers_total{side="cloud"}') == 1
    assert sample(text, 'confroute_api_answer_seconds_count{side="edge"}') == 3
    assert sample(text, 'confroute_api_answer_seconds_bucket{le="+Inf",side="edge"}') == 3
    assert sample(text, "confroute_api_escalation_unavailable_total") == 1
    assert "# TYPE confroute_api_answer_seconds histogram" in text
    assert sample(text, "confroute_api_time_to_first_token_seconds_count") == 4
    assert sample(text, 'confroute_api_completion_tokens_total{side="cloud"}') == 5  # "You said: a hard one"
    assert sample(text, 'confroute_api_confidence_bucket{le="0.5",side="cloud"}') == 1
    assert sample(text, "process_resident_memory_bytes") > 0


def test_a_scrape_is_counted_after_it_is_served(server: ApiServer) -> None:
    call(server, "GET", "/metrics")
    _, _, text = call(server, "GET", "/metrics")
    assert sample(text, 'confroute_api_requests_total{route="/metrics",status="200"}') == 1


def test_histogram_buckets_are_cumulative() -> None:
    metrics = ApiMetrics(buckets=(0.1, 1.0))
    answer = FakeAnswerer()._final("hello")
    for seconds in (0.05, 0.5, 0.7, 5.0):
        metrics.answer(answer, seconds)

    text = metrics.render()

    assert sample(text, 'confroute_api_answer_seconds_bucket{le="0.1",side="edge"}') == 1
    assert sample(text, 'confroute_api_answer_seconds_bucket{le="1.0",side="edge"}') == 3
    assert sample(text, 'confroute_api_answer_seconds_bucket{le="+Inf",side="edge"}') == 4
    assert sample(text, 'confroute_api_answer_seconds_sum{side="edge"}') == 6.25
    assert sample(text, 'confroute_api_answer_seconds_count{side="cloud"}') == 0


def test_the_device_reports_its_outbox_breaker_policy_and_probe(fake: FakeAnswerer) -> None:
    snapshot = DeviceSnapshot(outbox_depth=7, breaker_state="open", policy_version="p-3", edge_model_version="m-1",
                              outbox_evicted=4, outcomes_unrecorded=2, probe_version="0123456789ab")
    with serve_api(fake, device=lambda: snapshot) as server:
        text = call(server, "GET", "/metrics")[2]

    assert sample(text, "confroute_edge_outbox_depth") == 7
    assert sample(text, 'confroute_edge_breaker_state{state="open"}') == 1
    assert sample(text, 'confroute_edge_breaker_state{state="closed"}') == 0
    assert sample(text, 'confroute_edge_policy_info{edge_model_version="m-1",policy_version="p-3"}') == 1
    assert sample(text, 'confroute_edge_probe_info{probe_version="0123456789ab"}') == 1
    assert sample(text, "confroute_edge_outbox_evicted_total") == 4
    assert sample(text, "confroute_edge_outcomes_unrecorded_total") == 2
    assert sample(text, "confroute_api_requests_waiting") == 0
    assert sample(text, "confroute_api_batch_size") == 0
