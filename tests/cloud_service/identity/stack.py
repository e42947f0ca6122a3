"""A fleet for identity tests: a fleet CA and token secret in a temporary folder, a real Redis, the
``cloud-service`` CLI to enrol devices, and the gRPC service on a loopback port 0 with real TLS
certificates, an in-process echo backend and in-memory outcome log and policy store."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from cloud_service import cli
from cloud_service.config import ServiceConfig
from cloud_service.identity.authenticator import AuthSettings
from cloud_service.identity.ca import FleetCA, init_ca
from cloud_service.identity.service import open_identity
from cloud_service.metrics import ServiceMetrics, create_metrics
from cloud_service.server.app import CloudServer, Dependencies, build_server
from confroute.contract import (
    ChatMessage,
    ChatRole,
    EscalationRequest,
    EscalationResponse,
    FinishReason,
    GenerationParams,
    ModelRef,
    Policy,
    RoutingMode,
)
from confroute.contract.answer import Timings, Usage
from confroute.v1 import escalation_pb2, escalation_pb2_grpc, fleet_pb2_grpc, outcomes_pb2_grpc
from tests.cloud_service.memory_stores import MemoryPolicyStore
from tests.cloud_service.server.conftest import MemoryOutcomeLog
from tests.harness import LoopThread

FAST = AuthSettings(cache_ttl_s=0.5, negative_ttl_s=0.2, feed_interval_s=0.1)
EDGE_MODEL = ModelRef("smollm2-135m-instruct", "b1")


class EchoBackend:
    """Answers with the prompt's last message, at once."""

    async def generate(self, request: EscalationRequest, timeout_s: float) -> EscalationResponse:
        return EscalationResponse(
            text=request.messages[-1].content,
            finish_reason=FinishReason.STOP,
            model=ModelRef("echo", "1"),
            usage=Usage(1, 1),
            timings=Timings(0.0, 0.1, 0.1),
        )

    async def stream(self, request: EscalationRequest, timeout_s: float) -> AsyncIterator[Any]:
        yield await self.generate(request, timeout_s)

    async def close(self) -> None:
        """Nothing to release."""


@dataclass
class Fleet:
    """The operator's side of a test fleet."""

    folder: Path
    redis_url: str

    @property
    def ca_dir(self) -> Path:
        return self.folder / "ca"

    @property
    def ca(self) -> FleetCA:
        return FleetCA.load(self.ca_dir)

    def cli(self, *args: str) -> str:
        """Runs ``cloud-service`` with this fleet's settings; its stdout (exit status 0 asserted)."""
        out = io.StringIO()
        settings = ["--redis-url", self.redis_url, "--identity-secret", str(self.ca_dir / "identity.secret"),
                    "--ca-dir", str(self.ca_dir)]
        with contextlib.redirect_stdout(out):
            code = cli.main([*args[:2], *settings, *args[2:]])
        assert code == 0, out.getvalue()
        return out.getvalue()

    def enroll_token(self, device_id: str, cohort: str = "beta", *extra: str) -> str:
        """Enrols a device with a bearer token and returns the token."""
        printed = self.cli("devices", "enroll", device_id, "--cohort", cohort, *extra)
        return next(line.split()[1] for line in printed.splitlines() if line.startswith("token "))

    def enroll_cert(self, device_id: str, cohort: str = "beta") -> tuple[bytes, bytes]:
        """Enrols a device with a certificate; (certificate PEM, key PEM)."""
        out = self.folder / "devices"
        self.cli("devices", "enroll", device_id, "--cohort", cohort, "--credential", "cert", "--out", str(out))
        return (out / f"{device_id}.pem").read_bytes(), (out / f"{device_id}.key").read_bytes()

    def server_cert(self) -> tuple[Path, Path]:
        stem = self.folder / "server"
        if not stem.with_suffix(".pem").exists():
            cli.main(["ca", "server-cert", "--ca-dir", str(self.ca_dir), "--host", "127.0.0.1", "--host",
                      "localhost", "--out", str(stem)])
        return stem.with_suffix(".pem"), stem.with_suffix(".key")


def make_fleet(folder: Path, redis_url: str) -> Fleet:
    init_ca(folder / "ca")
    return Fleet(folder, redis_url)


@dataclass
class SecureService:
    """A running authenticated service; ``target`` is its address."""

    server: CloudServer
    log: MemoryOutcomeLog
    store: Any  # MemoryPolicyStore, or a RedisPolicyStore (``policy_store=``)
    fleet: Fleet
    mtls: bool
    metrics: ServiceMetrics
    loop: LoopThread | None = None  # set by the fixture: the loop the service runs on

    def publish(self, policy: Policy) -> None:
        assert self.loop is not None
        self.loop.run(self.store.publish(policy))

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def channel(self, cert: tuple[bytes, bytes] | None = None, root: bytes | None = None) -> grpc.Channel:
        """A device's channel: TLS with ``cert`` as its client certificate under mTLS, plain otherwise."""
        if not self.mtls:
            return grpc.insecure_channel(self.target)
        credentials = grpc.ssl_channel_credentials(
            root or self.fleet.ca.cert_pem, cert[1] if cert else None, cert[0] if cert else None
        )
        return grpc.secure_channel(self.target, credentials)


async def start_secure(
    fleet: Fleet, stack: AsyncExitStack, *, mtls: bool, settings: AuthSettings = FAST, policy_store: Any = None,
    **overrides: Any
) -> SecureService:
    """The service with mTLS (client certificates required) or bearer tokens over plain TCP (TLS at an ingress);
    its policy store is in memory unless ``policy_store`` is given (a factory called on the service's loop,
    e.g. of a RedisPolicyStore, which the operators' PolicyAdminService needs)."""
    cert, key = fleet.server_cert()
    values: dict[str, Any] = {"listen": "127.0.0.1:0", "metrics_listen": "", "redis_url": fleet.redis_url,
                              "readiness_interval_s": 0.1, "grace_s": 0.2}
    if mtls:
        values |= {"tls_cert": str(cert), "tls_key": str(key), "tls_client_ca": str(fleet.ca_dir / "ca.pem")}
    else:
        values |= {"identity_secret": str(fleet.ca_dir / "identity.secret")}
    config = ServiceConfig(**(values | overrides))
    identity = await stack.enter_async_context(open_identity(config, settings))
    log, metrics = MemoryOutcomeLog(), create_metrics()
    store: Any = MemoryPolicyStore()
    if policy_store is not None:
        store = policy_store()
        stack.push_async_callback(store.close)
    server = build_server(config, Dependencies(EchoBackend(), log, store, metrics, identity))

    async def ready() -> bool:
        return True

    await server.start(ready, config.readiness_interval_s)
    stack.push_async_callback(server.stop, config.grace_s)
    return SecureService(server, log, store, fleet, mtls, metrics)


def escalation(device_id: str, cohort: str = "beta", text: str = "the quick brown fox", **params: Any) -> Any:
    request = EscalationRequest(
        query_id="q-1", device_id=device_id, cohort=cohort, edge_model=EDGE_MODEL,
        messages=(ChatMessage(ChatRole.USER, text),), params=GenerationParams(**({"max_tokens": 16} | params)),
        mode=RoutingMode.PRE, signals={"p_correct": 0.3}, propensity=1.0,
    )
    return escalation_pb2.EscalateRequest(escalation=request.to_pb())


def bearer(token: str) -> Sequence[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def stubs(channel: grpc.Channel) -> tuple[Any, Any, Any]:
    """(escalation, outcomes, fleet) stubs on ``channel``."""
    return (
        escalation_pb2_grpc.EscalationServiceStub(channel),  # type: ignore[no-untyped-call]
        outcomes_pb2_grpc.OutcomesServiceStub(channel),  # type: ignore[no-untyped-call]
        fleet_pb2_grpc.FleetServiceStub(channel),  # type: ignore[no-untyped-call]
    )

