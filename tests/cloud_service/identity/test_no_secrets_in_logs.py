"""No credential, nor its keyed hash, ever appears in a log line of the service or the CLI: a run with
escalations, refused and flooding tokens, operator commands through the service, rotation and revocation;
its log records and the CLI's error output are searched for every credential it issued."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from cloud_service import cli
from cloud_service.identity.tokens import load_secret, new_token
from cloud_service.policies.config import PolicyStoreConfig
from cloud_service.policies.redis_store import RedisPolicyStore
from tests.cloud_service.identity.stack import bearer, escalation, stubs

if TYPE_CHECKING:
    from tests.cloud_service.identity.conftest import SecureFactory
    from tests.cloud_service.identity.stack import Fleet


def test_a_run_with_every_kind_of_call_logs_no_credential(
    fleet: Fleet, secure_service: SecureFactory, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    service = secure_service(mtls=False, policy_store=lambda: RedisPolicyStore(PolicyStoreConfig(url=fleet.redis_url)))
    tokens = [fleet.enroll_token("dev-a"), fleet.enroll_token("ops", "", "--operator"),
              fleet.enroll_token("ops-admin", "", "--operator", "--role", "policy-admin")]
    cert, key = fleet.enroll_cert("dev-c")
    escalate = stubs(service.channel())[0].Escalate
    escalate(escalation("dev-a"), metadata=bearer(tokens[0]), timeout=5.0)
    for metadata in (bearer(tokens[1]), bearer(tokens[0] + "x"), bearer("crt_" + "A" * 43)):
        with pytest.raises(grpc.RpcError):
            escalate(escalation("dev-a"), metadata=metadata, timeout=5.0)
    token_file = tmp_path / "ops-admin.token"
    token_file.write_text(tokens[2])
    token_file.chmod(0o600)
    service_flags = ["--edge-model-version", "b1", "--service", service.target, "--token-file", str(token_file)]
    assert cli.main(["policy", "set", *service_flags, "--edge-model-id", "m", "--policy-version", "v1"]) == 0
    assert cli.main(["policy", "history", *service_flags]) == 0
    assert cli.main(["policy", "pin", *service_flags[:2], "--policy-version", "v1", "--service", service.target]) == 2
    for _ in range(30):  # a flood of unknown tokens from this address
        with pytest.raises(grpc.RpcError):
            escalate(escalation("dev-a"), metadata=bearer(new_token()), timeout=5.0)
    printed = fleet.cli("devices", "rotate", "dev-a")
    tokens.append(next(line.split()[1] for line in printed.splitlines() if line.startswith("token ")))
    fleet.cli("devices", "revoke", "dev-a")

    hasher = load_secret(fleet.ca_dir / "identity.secret")
    secrets = [*tokens, *(hasher.hash(t) for t in tokens), key.decode().splitlines()[1],
               (fleet.ca_dir / "identity.secret").read_text().strip()]
    shown = capsys.readouterr()
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records) + shown.err
    assert caplog.records  # the run did log
    for secret in secrets:
        assert secret not in logged
    assert cert  # certificates are public; only their keys are secret
