"""The stack ``bench.security`` attacks, on loopback: a redis-server whose default user is off (the service
connects as the ACL user ``confroute``, keys ``confroute:*``, as docs/deployment.md configures it), a
tritonserver serving the echo model, a fleet CA, enrolled devices (two good, one revoked, one expired, one
rotated) and an operator, and the cloud service (production ``build_server`` on the Triton backend, the
Redis outcome log and the signing Redis policy store) four times over:

- ``mtls``: TLS, client certificates required (the fleet CA), no rate limit;
- ``token``: TLS, bearer tokens, the configured per-device limits;
- ``token_bare``: as ``token`` without rate limits, and ``open``: the same TLS server without
  authentication: the pair whose escalation latencies give the cost of authentication.

With ``triton`` False the model is an in-process echo instead of tritonserver (``bench.security
--model in-process``: what is attacked is the service's front door, and it starts in a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import secrets
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import redis as redis_py

from bench.cloudbench.processes import EchoTriton, RedisProcess
from cloud_service.backends.triton import TritonBackend, TritonBackendConfig
from cloud_service.config import ServiceConfig
from cloud_service.identity.authenticator import AuthSettings
from cloud_service.identity.ca import FleetCA, IssuedCert, init_ca
from cloud_service.identity.record import DEVICE_SCOPES, ROLES, Principal
from cloud_service.identity.registry import IdentityRegistry
from cloud_service.identity.service import open_identity
from cloud_service.identity.tokens import load_secret, new_token
from cloud_service.metrics import ServiceMetrics, create_metrics
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.redis_log import RedisOutcomeLog
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.redis_client import connect
from cloud_service.server.app import CloudServer, Dependencies, build_server
from confroute.contract import (
    EscalationRequest,
    EscalationResponse,
    FinishReason,
    ModelRef,
    Policy,
    RoutingMode,
    Thresholds,
)
from confroute.contract.answer import Timings, Usage
from confroute.signing import SigningKey, generate_key_pair

T = TypeVar("T")
EDGE_MODEL = ModelRef("bench-edge", "bench-1")
WAIT_S = 30.0
FAST_FEED = AuthSettings(cache_ttl_s=2.0, negative_ttl_s=1.0, feed_interval_s=0.5)
REDIS_USER = "confroute"
# The ACL of docs/deployment.md: confroute's keys only, no admin or dangerous commands (INFO allowed).
REDIS_COMMANDS = ["+@all", "-@admin", "-@dangerous", "+info"]


class EchoBackend:
    """Answers with the last message at once."""

    async def generate(self, request: EscalationRequest, timeout_s: float) -> EscalationResponse:
        return EscalationResponse(request.messages[-1].content, FinishReason.STOP, ModelRef("echo", "1"),
                                  Usage(1, 1), Timings(0.0, 0.0, 0.0))

    async def stream(self, request: EscalationRequest, timeout_s: float) -> AsyncIterator[Any]:
        yield await self.generate(request, timeout_s)

    async def close(self) -> None:
        """Nothing to release."""


class LoopThread:
    """An event loop on a thread of its own: the services run there, the attacks call in from outside."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="bench-security", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = WAIT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT_S)
        self.loop.close()


@dataclass
class Credential:
    """A device's (or operator's) credentials as enrolment handed them out."""

    principal_id: str
    token: str
    cert: IssuedCert


@dataclass
class Stack:
    """Everything an attack needs to reach."""

    folder: Path
    loop: LoopThread
    redis_url: str
    ca: FleetCA
    signing_key: SigningKey
    servers: dict[str, CloudServer]
    metrics: dict[str, ServiceMetrics]
    creds: dict[str, Credential]
    rotated_out: Credential  # dev-a's credentials before a rotation
    registry: IdentityRegistry
    redis_port: int
    model: str  # "tritonserver (echo)" or "in-process echo"

    def target(self, name: str) -> str:
        return f"127.0.0.1:{self.servers[name].port}"

    def channel(self, name: str, cert: IssuedCert | None = None, root: bytes | None = None) -> grpc.Channel:
        credentials = grpc.ssl_channel_credentials(
            root or self.ca.cert_pem, cert.key_pem if cert else None, cert.cert_pem if cert else None
        )
        return grpc.secure_channel(self.target(name), credentials)


async def _enrol(registry: IdentityRegistry, stack_ca: FleetCA, secret: Path, principal_id: str, *,
                 cohort: str = "beta", operator: bool = False, expires_at_s: int = 0) -> Credential:
    token = new_token()
    cert = stack_ca.issue_device(principal_id, dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
    record = Principal(principal_id, "operator" if operator else "device", "" if operator else cohort,
                       int(time.time()), expires_at_s, ROLES["read-only"] if operator else DEVICE_SCOPES,
                       role="read-only" if operator else "", token_hash=load_secret(secret).hash(token),
                       cert_serial=cert.serial)
    await registry.create(record)
    return Credential(principal_id, token, cert)


def policy_for(cohort: str, version: str) -> Policy:
    return Policy(version, EDGE_MODEL, cohort, RoutingMode.PRE, Thresholds(0.5, 0.5, 0.4, 0.6),
                  dt.datetime.now(dt.timezone.utc))


async def _backend(stack: AsyncExitStack, triton_url: str | None) -> Any:
    """The Triton backend on ``triton_url``, or the in-process echo when it is None."""
    if triton_url is None:
        return EchoBackend()
    backend = await TritonBackend.create(TritonBackendConfig(url=triton_url, model="echo"))
    stack.push_async_callback(backend.close)
    return backend


async def _start(stack: AsyncExitStack, config: ServiceConfig, key: SigningKey, triton_url: str | None
                 ) -> tuple[CloudServer, ServiceMetrics]:
    backend = await _backend(stack, triton_url)
    log = RedisOutcomeLog(OutcomeLogConfig(url=config.redis_url))
    await log.start()
    stack.push_async_callback(log.close)
    store = RedisPolicyStore(PolicyStoreConfig(url=config.redis_url), signer=key)
    stack.push_async_callback(store.close)
    identity = await stack.enter_async_context(open_identity(config, FAST_FEED))
    metrics = create_metrics()
    server = build_server(config, Dependencies(backend, log, store, metrics, identity))

    async def ready() -> bool:
        return True

    await server.start(ready if triton_url is None else backend.ready, 1.0)
    stack.push_async_callback(server.stop, 0.5)
    return server, metrics


async def _build(folder: Path, redis_url: str, triton_url: str | None, stack: AsyncExitStack) -> dict[str, Any]:
    ca_dir = folder / "ca"
    init_ca(ca_dir)
    ca = FleetCA.load(ca_dir)
    server_cert = ca.issue_server(("127.0.0.1", "localhost"), dt.datetime.now(dt.timezone.utc) + dt.timedelta(1))
    (folder / "server.pem").write_bytes(server_cert.cert_pem)
    (folder / "server.key").write_bytes(server_cert.key_pem)
    key = generate_key_pair(folder / "policy")
    redis = connect(redis_url, connect_timeout_s=1.0, command_timeout_s=5.0)
    stack.push_async_callback(redis.aclose)
    registry = IdentityRegistry(redis)
    secret = ca_dir / "identity.secret"
    creds = {name: await _enrol(registry, ca, secret, name, cohort=cohort)
             for name, cohort in (("dev-a", "beta"), ("dev-b", "gamma"), ("dev-r", "beta"), ("dev-x", "beta"))}
    creds["dev-e"] = await _enrol(registry, ca, secret, "dev-e", expires_at_s=int(time.time()) - 60)
    creds["ops"] = await _enrol(registry, ca, secret, "ops", operator=True)
    await registry.revoke("dev-r")
    rotated_out = creds["dev-x"]
    fresh = new_token()
    cert = ca.issue_device("dev-x", dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
    await registry.replace_credentials("dev-x", token_hash=load_secret(secret).hash(fresh), cert_serial=cert.serial)
    creds["dev-x"] = Credential("dev-x", fresh, cert)
    base = ServiceConfig(listen="127.0.0.1:0", metrics_listen="", redis_url=redis_url,
                         tls_cert=str(folder / "server.pem"), tls_key=str(folder / "server.key"),
                         rate_escalations_per_s=5.0, rate_escalation_burst=20)
    configs = {
        "mtls": dataclasses.replace(base, tls_client_ca=str(ca_dir / "ca.pem"), rate_escalations_per_s=0.0),
        "token": dataclasses.replace(base, identity_secret=str(secret)),
        "token_bare": dataclasses.replace(base, identity_secret=str(secret), rate_escalations_per_s=0.0),
        "open": base,
    }
    started = {name: await _start(stack, config, key, triton_url) for name, config in configs.items()}
    publisher = RedisPolicyStore(PolicyStoreConfig(url=redis_url), signer=key)
    for cohort in ("beta", "gamma"):
        await publisher.publish(policy_for(cohort, "v1"))
    await publisher.close()
    return {"ca": ca, "key": key, "servers": {name: pair[0] for name, pair in started.items()},
            "metrics": {name: pair[1] for name, pair in started.items()}, "creds": creds, "rotated_out": rotated_out,
            "registry": registry}


def _acl_user(redis: RedisProcess) -> str:
    """Adds the ``confroute`` ACL user, turns the default user off; the URL with the user's password."""
    password = secrets.token_urlsafe(24)
    with redis_py.Redis(port=redis.port) as admin:
        admin.acl_setuser(REDIS_USER, enabled=True, passwords=[f"+{password}"], keys=["confroute:*"],
                          channels=["*"], commands=REDIS_COMMANDS)
        admin.acl_setuser("default", enabled=False)
    return f"redis://{REDIS_USER}:{password}@127.0.0.1:{redis.port}/0"


@contextmanager
def running_stack(triton: bool = True, backend_python: Path | None = None) -> Iterator[Stack]:
    """Starts everything (tritonserver, on the models' interpreter ``backend_python``, unless ``triton`` is
    False), yields it, and stops it all."""
    with contextlib.ExitStack() as processes:
        scratch = processes.enter_context(tempfile.TemporaryDirectory(prefix="confroute-security-"))
        redis = processes.enter_context(RedisProcess())
        redis_url = _acl_user(redis)
        server = processes.enter_context(EchoTriton(backend_python)) if triton else None
        loop = LoopThread()
        exits = AsyncExitStack()
        try:
            parts = loop.run(_build(Path(scratch), redis_url, server.grpc_url if server else None, exits), 120.0)
            yield Stack(Path(scratch), loop, redis_url, parts["ca"], parts["key"], parts["servers"], parts["metrics"],
                        parts["creds"], parts["rotated_out"], parts["registry"], redis.port,
                        "tritonserver (echo)" if server else "in-process echo")
        finally:
            loop.run(exits.aclose())
            loop.close()
