"""A rate-limited device honours the cloud's ``retry-after-ms``: no call goes out before it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import grpc
import pytest

from confroute.backoff import Backoff
from confroute.contract.answer import StreamEvent
from confroute.errors import InvalidInput, Overloaded
from edge_agent.cloud import CloudConfig, EscalationClient
from tests.edge_agent.cloud.samples import escalation
from tests.edge_agent.cloud.scripted import Behaviour, ScriptedCloud, answers, serving

FAST = Backoff(base_s=0.01, cap_s=0.05)


def rate_limited(ms: int) -> Behaviour:
    def play(cloud: ScriptedCloud, context: grpc.ServicerContext) -> Iterator[StreamEvent]:
        context.set_trailing_metadata((("retry-after-ms", str(ms)),))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the device's rate limit is spent")
        yield from ()

    return play


def test_no_escalation_is_sent_before_the_delay_the_cloud_asked_for() -> None:
    cloud = ScriptedCloud(rate_limited(300), answers("four"))
    settings = CloudConfig("127.0.0.1:1", deadline_s=2.0, retries=0, backoff=FAST)
    with serving(cloud) as port, EscalationClient(replace(settings, target=f"127.0.0.1:{port}")) as client:
        with pytest.raises(Overloaded):
            client.escalate(escalation())
        with pytest.raises(Overloaded, match="no call"):
            client.escalate(escalation())
        assert cloud.calls == 1
        time.sleep(0.35)
        assert client.escalate(escalation()).text == "four"


def test_a_retry_waits_at_least_the_delay_and_none_is_made_past_the_deadline() -> None:
    cloud = ScriptedCloud(rate_limited(200), answers("four"))
    with serving(cloud) as port, EscalationClient(
        CloudConfig(f"127.0.0.1:{port}", deadline_s=2.0, retries=1, backoff=FAST)
    ) as client:
        started = time.monotonic()
        assert client.escalate(escalation()).text == "four"
        assert time.monotonic() - started >= 0.2

    cloud = ScriptedCloud(rate_limited(5000), answers("four"))
    with serving(cloud) as port, EscalationClient(
        CloudConfig(f"127.0.0.1:{port}", deadline_s=1.0, retries=2, backoff=FAST)
    ) as client, pytest.raises(Overloaded):
        client.escalate(escalation())
    assert cloud.calls == 1


def test_a_seed_protobuf_cannot_carry_is_bad_input_not_a_crash() -> None:
    request = escalation()
    request = replace(request, params=replace(request.params, seed=2**64))
    with serving(ScriptedCloud()) as port, EscalationClient(CloudConfig(f"127.0.0.1:{port}")) as client, \
            pytest.raises(InvalidInput):
        client.escalate(request)
