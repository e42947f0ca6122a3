"""The attacks on the device: forged, unsigned, replayed and wrong-model policies offered to the device's
policy keeper, and bad input, slow clients and a missing key on its local HTTP API."""

from __future__ import annotations

import http.client
import json
import select
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from bench.securitybench.attacks import Attack
from bench.securitybench.stack import EDGE_MODEL, Stack
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from confroute.contract import ModelRef, Policy
from confroute.engine import SamplingParams
from confroute.signing import PolicyVerifier, TrustedKeys, generate_key_pair, sign_policy
from edge_agent.answer import AgentAnswer, TextDelta
from edge_agent.api import ApiConfig, ApiServer, serve_api
from edge_agent.cloud.policy import PolicyKeeper

API_KEY = "bench-api-key-0123456789"
MODEL = "confroute-edge"
SLOW_LORIS_TIMEOUT_S = 2.0


class EchoAnswerer:
    """The device's answerer, reduced to an echo: what is attacked is the API in front of it."""

    @property
    def model_ids(self) -> Sequence[str]:
        return (MODEL,)

    def answer(self, messages: Sequence[Mapping[str, str]], params: SamplingParams) -> AgentAnswer:
        text = messages[-1]["content"]
        return AgentAnswer("q", text, "edge", MODEL, "local", 0.9, 0.5, "v1", False, "stop", 1, 1, 0.1)

    def stream(self, messages: Sequence[Mapping[str, str]],
               params: SamplingParams) -> Iterator[TextDelta | AgentAnswer]:
        yield self.answer(messages, params)


@dataclass
class DeviceTarget:
    api: ApiServer
    keeper: PolicyKeeper
    signed: Policy  # the current policy as the cloud issued it


def _current(stack: Stack) -> Policy:
    async def read() -> Policy:
        store = RedisPolicyStore(PolicyStoreConfig(url=stack.redis_url))
        try:
            policy = await store.current(EDGE_MODEL.version, "beta")
        finally:
            await store.close()
        assert policy is not None
        return policy

    return stack.loop.run(read())


@contextmanager
def device(stack: Stack) -> Iterator[DeviceTarget]:
    """A policy keeper that trusts the cloud's key (holding the current policy) and a keyed device API."""
    verifier = PolicyVerifier(TrustedKeys.of([stack.signing_key.private_key.public_key()]))
    keeper = PolicyKeeper(EDGE_MODEL, "beta", verify_signature=verifier)
    signed = _current(stack)
    assert keeper.offer(signed).applied
    config = ApiConfig(port=0, request_timeout_s=SLOW_LORIS_TIMEOUT_S, max_body_bytes=1 << 20, api_key=API_KEY)
    with serve_api(EchoAnswerer(), config) as api:
        yield DeviceTarget(api, keeper, signed)


def _offered(target: DeviceTarget, policy: Policy) -> str:
    return "APPLIED" if target.keeper.offer(policy).applied else "REFUSED"


def _forged(target: DeviceTarget) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        rogue = generate_key_pair(Path(scratch) / "rogue")
    lowered = replace(target.signed, thresholds=replace(target.signed.thresholds, pre=0.0, post=0.0),
                      issued_at=target.signed.issued_at + timedelta(seconds=1))
    forged = replace(sign_policy(lowered, rogue), key_id=target.signed.key_id)  # claims the cloud's key
    return _offered(target, forged)


def _replayed(target: DeviceTarget) -> str:
    older = replace(target.signed, issued_at=target.signed.issued_at - timedelta(days=1), policy_version="v0")
    return _offered(target, older)  # its signature no longer matches either: both checks refuse it


def _wrong_model(target: DeviceTarget, stack: Stack) -> str:
    other = replace(target.signed, edge_model=ModelRef("other-model", "9"),
                    issued_at=target.signed.issued_at + timedelta(seconds=2))
    return _offered(target, sign_policy(other, stack.signing_key))  # genuinely signed, for another model


def _http(target: DeviceTarget, body: bytes | None, *, key: str | None = API_KEY,
          method: str = "POST", path: str = "/v1/chat/completions") -> str:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    connection = http.client.HTTPConnection(target.api.host, target.api.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        return str(connection.getresponse().status)
    finally:
        connection.close()


def _huge_body(target: DeviceTarget, size: int = 2 << 20) -> str:
    """A body over the limit, sent in chunks while watching for the answer: the server may answer 413 and
    hang up before the body is all sent (then the client's next write is reset), so the status is read as
    soon as it arrives rather than after the last write."""
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
    chunk = b"x" * 65536
    with socket.create_connection((target.api.host, target.api.port), timeout=10) as raw:
        raw.sendall(head)
        sent = 0
        while sent < size:
            readable, _, _ = select.select([raw], [], [], 0)
            if readable:
                break
            try:
                raw.sendall(chunk)
            except OSError:
                break
            sent += len(chunk)
        try:
            status_line = raw.recv(64).split(b"\r\n", 1)[0].split()
        except OSError as exc:
            return f"ERROR:{type(exc).__name__}"
    return status_line[1].decode() if len(status_line) > 1 else "NO_ANSWER"


def _chat(**fields: object) -> bytes:
    return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}).encode()


def _slow_loris(target: DeviceTarget) -> str:
    """Headers sent one byte at a time, slower than the request timeout allows: the server hangs up."""
    started = time.monotonic()
    with socket.create_connection((target.api.host, target.api.port), timeout=10) as raw:
        try:
            for byte in b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n":
                raw.sendall(bytes([byte]))
                time.sleep(0.5)
                if time.monotonic() - started > 3 * SLOW_LORIS_TIMEOUT_S:
                    return "NOT_CLOSED"
        except OSError:
            return "CLOSED"
    return "NOT_CLOSED"


def device_attacks(stack: Stack, target: DeviceTarget) -> list[Attack]:
    lone = b'{"model": "confroute-edge", "messages": [{"role": "user", "content": "\\ud800"}]}'
    http_attack: Callable[..., Callable[[Stack], str]] = lambda *a, **k: lambda _s: _http(target, *a, **k)  # noqa: E731
    return [
        Attack("forged policy signature", "REFUSED", lambda _s: _forged(target)),
        Attack("unsigned policy", "REFUSED",
               lambda _s: _offered(target, replace(target.signed, signature=b"",
                                                   issued_at=target.signed.issued_at + timedelta(seconds=3)))),
        Attack("replayed older policy", "REFUSED", lambda _s: _replayed(target)),
        Attack("policy for another model", "REFUSED", lambda _s: _wrong_model(target, stack)),
        Attack("device API without its key", "401", http_attack(_chat(), key=None)),
        Attack("device API with a wrong key", "401", http_attack(_chat(), key="guess")),
        Attack("malformed JSON", "400", http_attack(b'{"model": ')),
        Attack("wrong types", "400", http_attack(_chat(max_tokens="many", temperature=[1]))),
        Attack("huge body (2 MiB)", "413", lambda _s: _huge_body(target)),
        Attack("seed=-1", "400", http_attack(_chat(seed=-1))),
        Attack("seed=2^64", "400", http_attack(_chat(seed=2**64))),
        Attack("lone surrogate in content", "400", http_attack(lone)),
        Attack("slow-loris headers", "CLOSED", lambda _s: _slow_loris(target)),
    ]
