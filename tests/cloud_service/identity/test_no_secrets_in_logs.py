"""No credential, nor its keyed hash, ever appears in a log line of the service or the CLI."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc
import pytest

from cloud_service.identity.tokens import load_secret
from tests.cloud_service.identity.stack import bearer, escalation, stubs

if TYPE_CHECKING:
    from tests.cloud_service.identity.conftest import SecureFactory
    from tests.cloud_service.identity.stack import Fleet


def test_a_run_with_every_kind_of_call_logs_no_credential(
    fleet: Fleet, secure_service: SecureFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service = secure_service(mtls=False)
    tokens = [fleet.enroll_token("dev-a"), fleet.enroll_token("ops", "", "--operator")]
    cert, key = fleet.enroll_cert("dev-c")
    escalate = stubs(service.channel())[0].Escalate
    escalate(escalation("dev-a"), metadata=bearer(tokens[0]), timeout=5.0)
    for metadata in (bearer(tokens[1]), bearer(tokens[0] + "x"), bearer("crt_" + "A" * 43)):
        with pytest.raises(grpc.RpcError):
            escalate(escalation("dev-a"), metadata=metadata, timeout=5.0)
    printed = fleet.cli("devices", "rotate", "dev-a")
    tokens.append(next(line.split()[1] for line in printed.splitlines() if line.startswith("token ")))
    fleet.cli("devices", "revoke", "dev-a")

    hasher = load_secret(fleet.ca_dir / "identity.secret")
    secrets = [*tokens, *(hasher.hash(t) for t in tokens), key.decode().splitlines()[1],
               (fleet.ca_dir / "identity.secret").read_text().strip()]
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records  # the run did log
    for secret in secrets:
        assert secret not in logged
    assert cert  # certificates are public; only their keys are secret
