"""Identity over ``rediss://``: Redis with TLS (a certificate from the fleet CA) and an ACL user."""

from __future__ import annotations

import datetime as dt
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from cloud_service.identity.ca import FleetCA, init_ca
from tests.cloud_service.identity.stack import Fleet, bearer, escalation, start_secure, stubs
from tests.cloud_service.redis_server import RedisServer, RedisServerMissing, free_port

if TYPE_CHECKING:
    from tests.harness import LoopThread


class TlsRedisServer(RedisServer):
    """A redis-server that also listens with TLS on ``tls_port`` (the plain port answers the readiness PING)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.tls_port = free_port()
        ca = FleetCA.load(folder)
        issued = ca.issue_server(("127.0.0.1",), dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
        self.cert, self.key, self.ca = folder / "redis.pem", folder / "redis.key", folder / "ca.pem"
        self.cert.write_bytes(issued.cert_pem)
        self.key.write_bytes(issued.key_pem)

    def _command(self) -> list[str]:
        return [*super()._command(), "--tls-port", str(self.tls_port), "--tls-cert-file", str(self.cert),
                "--tls-key-file", str(self.key), "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no"]

    def tls_url(self, user: str, password: str) -> str:
        return f"rediss://{user}:{password}@127.0.0.1:{self.tls_port}/0?ssl_ca_certs={self.ca}"


def test_enrolment_and_authentication_work_over_tls_as_an_acl_user(tmp_path: Path, loop: LoopThread) -> None:
    init_ca(tmp_path / "ca")
    try:
        server = TlsRedisServer(tmp_path / "ca")
    except RedisServerMissing as exc:
        pytest.skip(str(exc))
    with server:
        with redis.Redis(port=server.port) as admin:
            admin.acl_setuser("svc", enabled=True, passwords=["+tls-pw"], keys=["confroute:*"],
                              commands=["+@all", "-@dangerous"])
        fleet = Fleet(tmp_path, server.tls_url("svc", "tls-pw"))
        token = fleet.enroll_token("dev-a")
        stack = AsyncExitStack()
        try:
            service = loop.run(start_secure(fleet, stack, mtls=False))
            reply = stubs(service.channel())[0].Escalate(escalation("dev-a"), metadata=bearer(token), timeout=5.0)
            assert reply.answer.text
        finally:
            loop.run(stack.aclose())
