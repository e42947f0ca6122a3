"""The escalation client against real gRPC servers on loopback: the cloud's own servicers when it works,
scripted ones when it is down, slow, overloaded, erroring or breaks a stream midway."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest

from confroute.backoff import Backoff
from confroute.contract import EscalationResponse, TokenDelta
from confroute.errors import DeadlineExceeded, InvalidInput, Overloaded, RuntimeFailure, Unavailable
from edge_agent.cloud import BreakerSettings, BreakerState, CircuitBreaker, CloudConfig, EscalationClient
from tests.edge_agent.cloud.clock import FakeClock
from tests.edge_agent.cloud.real_cloud import RealCloud
from tests.edge_agent.cloud.samples import escalation
from tests.edge_agent.cloud.scripted import (
    ScriptedCloud,
    answers,
    breaks_after,
    endless,
    ends_without_final,
    fails,
    free_port,
    malformed,
    serving,
    slow,
)

FAST = Backoff(base_s=0.01, cap_s=0.05)
Code = grpc.StatusCode


def config(target: str, **changes: Any) -> CloudConfig:
    values: dict[str, Any] = {"target": target, "deadline_s": 2.0, "retries": 2, "backoff": FAST}
    return CloudConfig(**(values | changes))


@contextmanager
def client_of(cloud: ScriptedCloud, **changes: Any) -> Iterator[EscalationClient]:
    with serving(cloud) as port, EscalationClient(config(f"127.0.0.1:{port}", **changes)) as client:
        yield client


class Draw(random.Random):
    """Every draw is the same number."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_an_escalation_gets_the_cloud_answer(real_cloud: RealCloud) -> None:
    with EscalationClient(config(real_cloud.target)) as client:
        reply = client.escalate(escalation(question="two plus two"))

    assert reply.text == "two plus two"
    assert client.breaker.state is BreakerState.CLOSED


def test_a_stream_delivers_deltas_then_the_final_answer(real_cloud: RealCloud) -> None:
    with EscalationClient(config(real_cloud.target)) as client:
        events = list(client.stream(escalation(question="one two three")))

    assert [e.text for e in events[:-1]] == ["one ", "two ", "three "]
    assert isinstance(events[-1], EscalationResponse) and events[-1].text == "one two three"


def test_the_device_token_travels_as_a_bearer_credential() -> None:
    cloud = ScriptedCloud()
    with client_of(cloud, token="s3cret") as client:
        client.escalate(escalation())

    assert cloud.metadata[0]["authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(config("x:1", token="s3cret"))


def test_unavailable_is_retried_with_the_same_query_id() -> None:
    cloud = ScriptedCloud(fails(Code.UNAVAILABLE), answers("four"))
    with client_of(cloud) as client:
        assert client.escalate(escalation()).text == "four"
    assert cloud.calls == 2


def test_overload_is_retried_a_bounded_number_of_times_then_reported() -> None:
    cloud = ScriptedCloud(fails(Code.RESOURCE_EXHAUSTED))
    with client_of(cloud, retries=2) as client, pytest.raises(Overloaded):
        client.escalate(escalation())
    assert cloud.calls == 3


@pytest.mark.parametrize(
    ("code", "error"), [(Code.INTERNAL, RuntimeFailure), (Code.INVALID_ARGUMENT, InvalidInput)]
)
def test_errors_that_a_retry_cannot_fix_are_not_retried(code: grpc.StatusCode, error: type[Exception]) -> None:
    cloud = ScriptedCloud(fails(code))
    with client_of(cloud) as client, pytest.raises(error, match=code.name):
        client.escalate(escalation())
    assert cloud.calls == 1


def test_a_malformed_answer_is_the_clouds_failure_not_the_callers() -> None:
    with client_of(ScriptedCloud(malformed)) as client:
        with pytest.raises(RuntimeFailure, match=r"usage\.prompt_tokens"):
            client.escalate(escalation())
        with pytest.raises(RuntimeFailure, match="malformed"):
            list(client.stream(escalation()))


def test_no_retry_is_made_that_the_budget_cannot_wait_for() -> None:
    cloud = ScriptedCloud(fails(Code.UNAVAILABLE))
    with serving(cloud) as port:
        slow_backoff = config(f"127.0.0.1:{port}", deadline_s=0.5, backoff=Backoff(base_s=5.0, cap_s=5.0))
        with EscalationClient(slow_backoff, rng=Draw(0.99)) as client, pytest.raises(Unavailable):
            client.escalate(escalation())
    assert cloud.calls == 1


def test_a_cloud_that_is_down_is_unavailable_within_the_deadline() -> None:
    with EscalationClient(config(f"127.0.0.1:{free_port()}", deadline_s=2.0)) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            client.escalate(escalation())
        assert time.monotonic() - started < 2.0


def test_the_breaker_opens_after_repeated_failures_and_then_fails_fast() -> None:
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=3, cooldown_s=30.0))
    with EscalationClient(config(f"127.0.0.1:{free_port()}", retries=0), breaker=breaker) as client:
        for _ in range(3):
            with pytest.raises(Unavailable, match="UNAVAILABLE"):
                client.escalate(escalation())
        assert breaker.state is BreakerState.OPEN

        started = time.monotonic()
        with pytest.raises(Unavailable, match="circuit open"):
            client.escalate(escalation())
        assert time.monotonic() - started < 0.05


def test_an_open_breaker_sends_nothing_until_its_cooldown_then_one_trial_closes_it(clock: FakeClock) -> None:
    cloud = ScriptedCloud(fails(Code.UNAVAILABLE), fails(Code.UNAVAILABLE), answers("back"))
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=2, cooldown_s=30.0), clock)
    with serving(cloud) as port, EscalationClient(config(f"127.0.0.1:{port}", retries=0), breaker=breaker) as client:
        for _ in range(3):
            with pytest.raises(Unavailable):
                client.escalate(escalation())
        assert cloud.calls == 2  # the third was refused on the device

        clock.advance(30.0)
        assert client.escalate(escalation()).text == "back"
    assert breaker.state is BreakerState.CLOSED


def test_a_slow_cloud_is_a_deadline_exceeded_within_the_deadline() -> None:
    cloud = ScriptedCloud(slow(5.0))
    with client_of(cloud, deadline_s=0.3) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            client.escalate(escalation())
        assert time.monotonic() - started < 0.3 + 0.5
    assert cloud.calls == 1  # the whole budget is spent: no retry


def test_a_stream_broken_midway_raises_after_the_deltas_it_delivered() -> None:
    cloud = ScriptedCloud(breaks_after(3))
    received: list[Any] = []
    with client_of(cloud) as client, pytest.raises(Unavailable, match="broken after 3 events"):
        for event in client.stream(escalation()):
            received.append(event)

    assert len(received) == 3 and all(isinstance(e, TokenDelta) for e in received)
    assert cloud.calls == 1  # never retried once deltas were delivered


def test_a_stream_that_ends_without_a_final_answer_is_unavailable() -> None:
    with client_of(ScriptedCloud(ends_without_final)) as client, pytest.raises(Unavailable, match="without a final"):
        list(client.stream(escalation()))


def test_a_stream_is_retried_while_nothing_was_delivered() -> None:
    cloud = ScriptedCloud(fails(Code.UNAVAILABLE), answers("one two"))
    with client_of(cloud) as client:
        events = list(client.stream(escalation()))
    assert [e.text for e in events] == ["one ", "two ", "one two"]
    assert cloud.calls == 2


def test_closing_a_stream_early_cancels_the_call() -> None:
    cloud = ScriptedCloud(endless)
    with client_of(cloud) as client:
        events = client.stream(escalation())
        next(events)
        next(events)
        events.close()  # type: ignore[attr-defined]
        assert cloud.cancelled.wait(2.0)


def test_mutual_tls_with_the_device_certificate(certs: Any) -> None:
    server_credentials = grpc.ssl_server_credentials(
        [(certs.server_key.read_bytes(), certs.server_cert.read_bytes())],
        root_certificates=certs.ca.read_bytes(),
        require_client_auth=True,
    )
    cloud = ScriptedCloud(answers("secure"))
    with serving(cloud, credentials=server_credentials) as port:
        target = f"127.0.0.1:{port}"
        mtls = config(target, root_certs=certs.ca, client_cert=certs.client_cert, client_key=certs.client_key)
        with EscalationClient(mtls) as client:
            assert client.escalate(escalation()).text == "secure"
        without_client_cert = config(target, root_certs=certs.ca, retries=0)
        with EscalationClient(without_client_cert) as client, pytest.raises(Unavailable):
            client.escalate(escalation())
        with EscalationClient(config(target, retries=0)) as client, pytest.raises(Unavailable):
            client.escalate(escalation())  # plaintext to a TLS port


def test_an_unreadable_certificate_file_is_invalid_input(tmp_path: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        EscalationClient(config("127.0.0.1:1", root_certs=tmp_path / "missing.pem"))
    assert caught.value.field == "cloud.root_certs"


def test_the_config_refuses_a_client_certificate_without_its_key(tmp_path: Any) -> None:
    with pytest.raises(InvalidInput):
        config("127.0.0.1:1", client_cert=tmp_path / "client.pem")
