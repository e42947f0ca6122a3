"""Floods of invalid credentials are limited per peer address, before any hash or Redis read, and counted;
a device whose credential the service verified recently is served next to the flood."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from cloud_service.identity.authenticator import Authenticator, AuthSettings
from cloud_service.identity.flood import FailureBudget, peer_host
from cloud_service.identity.record import Principal
from cloud_service.identity.tokens import TokenHasher, new_token
from cloud_service.metrics import refusals_counted
from confroute.errors import CredentialFlood, Unauthenticated
from tests.cloud_service.identity.stack import bearer, escalation, stubs

if TYPE_CHECKING:
    from tests.cloud_service.identity.conftest import SecureFactory
    from tests.cloud_service.identity.stack import Fleet

T = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingRegistry:
    """Knows nobody; counts the lookups it was asked for."""

    def __init__(self) -> None:
        self.lookups = 0

    async def by_token_hash(self, token_hash: str) -> Principal | None:
        self.lookups += 1
        return None


def test_a_budget_refuses_a_peer_past_its_burst_and_refills() -> None:
    clock = Clock()
    budget = FailureBudget(burst=3, per_s=2.0, clock=clock)
    for _ in range(3):
        budget.check("ipv4:10.0.0.5")
        budget.charge("ipv4:10.0.0.5")
    with pytest.raises(CredentialFlood) as caught:
        budget.check("ipv4:10.0.0.5")
    assert caught.value.retry_after_s == pytest.approx(0.5)
    budget.check("ipv4:10.0.0.6")  # another address has its own budget
    clock.now += 0.5
    budget.check("ipv4:10.0.0.5")


def test_the_peer_is_its_host() -> None:
    assert peer_host("ipv4:10.0.0.5:51234") == "ipv4:10.0.0.5"
    assert peer_host("ipv6:[::1]:5") == "ipv6:[::1]"
    assert peer_host("unix:/tmp/s") == "unix:/tmp/s"


def test_malformed_tokens_cost_no_lookup_and_a_spent_budget_stops_lookups() -> None:
    registry = CountingRegistry()
    settings = AuthSettings(flood_burst=5, flood_per_s=1.0)
    authenticator = Authenticator(registry, TokenHasher(b"k" * 32), settings, clock=Clock())  # type: ignore[arg-type]

    def attempt(token: str) -> type[Exception]:
        try:
            asyncio.run(authenticator.authenticate(bearer(token), dict, "ipv4:10.0.0.5:4000"))
        except (Unauthenticated, CredentialFlood) as exc:
            return type(exc)
        raise AssertionError("an unknown token was accepted")

    assert attempt("crt_garbage") is Unauthenticated
    assert registry.lookups == 0
    assert [attempt(new_token()) for _ in range(4)] == [Unauthenticated] * 4
    assert registry.lookups == 4
    assert attempt(new_token()) is CredentialFlood
    assert registry.lookups == 4


def test_a_garbage_token_flood_is_limited_and_counted_while_a_known_device_is_served(
    fleet: Fleet, secure_service: SecureFactory
) -> None:
    service = secure_service(mtls=False, rate_escalations_per_s=0.0, invalid_credential_burst=10,
                             invalid_credentials_per_s=0.1)
    token = fleet.enroll_token("dev-a")
    escalate = stubs(service.channel())[0].Escalate
    assert escalate(escalation("dev-a"), metadata=bearer(token), timeout=T).answer.text

    def garbage() -> Any:
        try:
            escalate(escalation("dev-a"), metadata=bearer(new_token()), timeout=T)
        except grpc.RpcError as exc:
            return exc
        raise AssertionError("a garbage token was accepted")

    codes = []
    for _ in range(40):
        refused = garbage()
        codes.append(refused.code())
        assert escalate(escalation("dev-a"), metadata=bearer(token), timeout=T).answer.text  # cached: served
    time.sleep(0.6)  # past the cache TTL: dev-a's token is looked up again, the address still flooding
    assert garbage().code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert escalate(escalation("dev-a"), metadata=bearer(token), timeout=T).answer.text
    assert codes[0] == grpc.StatusCode.UNAUTHENTICATED
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert int(dict(refused.trailing_metadata())["retry-after-ms"]) > 0
    floods = refusals_counted(service.metrics.registry, "EscalationService", "credential_flood")
    assert floods == codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) + 1
