"""The operators' policy commands through the service (PolicyAdminService), guarded by roles: a read-only
operator reads, a policy admin changes, devices and callers without a credential are refused. The real
in-process server with TLS certificates, a real Redis policy store, and the ``cloud-service`` CLI."""

from __future__ import annotations

import contextlib
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from cloud_service import cli
from cloud_service.identity.access import require_operator
from cloud_service.identity.record import POLICY_READ
from cloud_service.metrics import refusals_counted
from cloud_service.operator import wire
from cloud_service.policies.config import PolicyStoreConfig
from cloud_service.policies.operations import publish_candidate
from cloud_service.policies.redis_store import RedisPolicyStore
from confroute.contract import Policy, RoutingMode
from confroute.contract.policy import Thresholds
from confroute.errors import PermissionDenied
from confroute.signing import generate_key_pair, load_signing_key
from confroute.v1 import operator_pb2, operator_pb2_grpc
from tests.cloud_service.identity.stack import EDGE_MODEL, bearer

if TYPE_CHECKING:
    from tests.cloud_service.identity.conftest import SecureFactory
    from tests.cloud_service.identity.stack import Fleet, SecureService

T = 5.0
KEY = wire.key_to_pb(EDGE_MODEL.version, "beta")
WRITES = ("SetPolicy", "Promote", "Rollback", "Pin", "Unpin")
READS = ("GetRollout", "GetVersion", "GetHistory")


def policy(version: str, pre: float = 0.5) -> Policy:
    return Policy(policy_version=version, edge_model=EDGE_MODEL, cohort="beta", mode=RoutingMode.PRE,
                  thresholds=Thresholds(pre=pre, post=0.6, hybrid_low=0.3, hybrid_high=0.8),
                  issued_at=datetime(2026, 1, 5, tzinfo=timezone.utc))


def request_for(method: str) -> Any:
    """A well-formed request of each RPC, on the test key."""
    if method == "SetPolicy":
        return operator_pb2.SetPolicyRequest(policy=policy("v9").to_pb(), reason="test")
    if method == "Pin":
        return operator_pb2.PinRequest(key=KEY, version="v1", reason="test")
    if method == "GetRollout":
        return operator_pb2.GetRolloutRequest(key=KEY)
    if method == "GetVersion":
        return operator_pb2.GetVersionRequest(key=KEY, version="v1")
    if method == "GetHistory":
        return operator_pb2.GetHistoryRequest(key=KEY, count=5)
    return getattr(operator_pb2, f"{method}Request")(key=KEY, reason="test")


def code_of(call: Any) -> str:
    try:
        call()
    except grpc.RpcError as exc:
        return str(exc.code().name)
    return "OK"


@pytest.fixture
def signed(tmp_path: Path) -> Path:
    stem = tmp_path / "policy-key"
    generate_key_pair(stem)
    return stem


@pytest.fixture
def operated(fleet: Fleet, secure_service: SecureFactory, signed: Path) -> SecureService:
    """A token service whose policy store is Redis, signing with the operator key, with v1 as control."""
    signer = load_signing_key(Path(f"{signed}.key"))
    service = secure_service(mtls=False, policy_store=lambda: RedisPolicyStore(
        PolicyStoreConfig(url=fleet.redis_url, watch_block_s=0.2), signer=signer))
    assert service.loop is not None
    service.loop.run(publish_candidate(service.store, policy("v1"), canary_share=0.2))
    return service


def admin_stub(service: SecureService, cert: tuple[bytes, bytes] | None = None) -> Any:
    return operator_pb2_grpc.PolicyAdminServiceStub(service.channel(cert))  # type: ignore[no-untyped-call]


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def token_file(folder: Path, name: str, token: str) -> Path:
    path = folder / name
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def test_a_read_only_operator_reads_but_may_change_nothing(fleet: Fleet, operated: SecureService) -> None:
    token = fleet.enroll_token("ops-ro", "", "--operator", "--role", "read-only")
    stub = admin_stub(operated)
    rollout = stub.GetRollout(request_for("GetRollout"), metadata=bearer(token), timeout=T)
    assert rollout.state.control == "v1" and [p.policy_version for p in rollout.policies] == ["v1"]
    assert stub.GetVersion(request_for("GetVersion"), metadata=bearer(token), timeout=T).policy.policy_version == "v1"
    assert stub.GetHistory(request_for("GetHistory"), metadata=bearer(token), timeout=T).entries[0].action
    for method in WRITES:
        assert code_of(lambda m=method: getattr(stub, m)(request_for(m), metadata=bearer(token), timeout=T)) == \
            "PERMISSION_DENIED", method
    refused = refusals_counted(operated.metrics.registry, "PolicyAdminService", "permission_denied")
    assert refused == len(WRITES)


def test_devices_and_callers_without_a_credential_are_refused_every_call(
    fleet: Fleet, operated: SecureService
) -> None:
    device = fleet.enroll_token("dev-a", "beta")
    stub = admin_stub(operated)
    for method in (*READS, *WRITES):
        call = getattr(stub, method)
        assert code_of(lambda c=call, m=method: c(request_for(m), metadata=bearer(device), timeout=T)) == \
            "PERMISSION_DENIED", method
        assert code_of(lambda c=call, m=method: c(request_for(m), timeout=T)) == "UNAUTHENTICATED", method


def test_a_policy_admin_runs_the_rollout_and_the_history_names_them(
    fleet: Fleet, operated: SecureService, signed: Path
) -> None:
    token = fleet.enroll_token("ops-admin", "", "--operator", "--role", "policy-admin")
    stub, metadata = admin_stub(operated), bearer(token)
    issued = stub.SetPolicy(request_for("SetPolicy"), metadata=metadata, timeout=T).policy
    assert issued.policy_version == "v9" and issued.key_id == load_signing_key(Path(f"{signed}.key")).key_id
    assert operated.loop is not None
    operated.loop.run(publish_candidate(operated.store, policy("v10", pre=0.4), canary_share=0.5))
    assert stub.Promote(request_for("Promote"), metadata=metadata, timeout=T).control == "v10"
    assert stub.Rollback(request_for("Rollback"), metadata=metadata, timeout=T).control.startswith("v9+rollback")
    pinned = stub.Pin(request_for("Pin"), metadata=metadata, timeout=T).control
    assert pinned.startswith("v1+pin")
    assert stub.GetRollout(request_for("GetRollout"), metadata=metadata, timeout=T).state.pinned
    stub.Unpin(request_for("Unpin"), metadata=metadata, timeout=T)
    history = stub.GetHistory(request_for("GetHistory"), metadata=metadata, timeout=T).entries
    assert [e.action for e in history] == ["unpin", "pin", "rollback", "promote", "canary"]
    assert all("(by ops-admin)" in e.reason for e in history if e.action != "canary")


def test_bad_operator_requests_are_invalid_argument(fleet: Fleet, operated: SecureService) -> None:
    token = fleet.enroll_token("ops-admin", "", "--operator", "--role", "policy-admin")
    stub = admin_stub(operated)
    for request in (operator_pb2.PromoteRequest(), operator_pb2.PromoteRequest(key=KEY, reason="x" * 300),
                    operator_pb2.PinRequest(key=KEY, version="nope"), operator_pb2.SetPolicyRequest()):
        method = "Pin" if isinstance(request, operator_pb2.PinRequest) else \
            "SetPolicy" if isinstance(request, operator_pb2.SetPolicyRequest) else "Promote"
        got = code_of(lambda r=request, m=method: getattr(stub, m)(r, metadata=bearer(token), timeout=T))
        assert got == "INVALID_ARGUMENT", (method, request)


def test_the_cli_runs_policy_commands_through_the_service(
    fleet: Fleet, operated: SecureService, tmp_path: Path
) -> None:
    admin = token_file(tmp_path, "admin.token", fleet.enroll_token("ops-admin", "", "--operator", "--role",
                                                                   "policy-admin"))
    reader = token_file(tmp_path, "reader.token", fleet.enroll_token("ops-ro", "", "--operator"))
    key = ["--edge-model-version", EDGE_MODEL.version, "--cohort", "beta", "--service", operated.target]
    code, out, _ = run_cli("policy", "set", *key, "--token-file", str(admin), "--edge-model-id", EDGE_MODEL.id,
                           "--policy-version", "v2", "--mode", "pre", "--pre", "0.4")
    assert code == 0 and '"policyVersion": "v2"' in out
    code, out, _ = run_cli("policy", "history", *key, "--token-file", str(reader))
    assert code == 0 and out.splitlines()[0].split()[1] == "publish"
    code, out, _ = run_cli("policy", "show", *key, "--token-file", str(reader), "--json")
    assert code == 0 and '"control": "v2"' in out
    code, out, _ = run_cli("policy", "diff", "v1", *key, "--token-file", str(reader))
    assert code == 0 and "thresholds.pre" in out
    code, _, err = run_cli("policy", "pin", *key, "--policy-version", "v1", "--token-file", str(reader))
    assert code == 1 and "refused Pin" in err and "policy:write" in err
    code, out, _ = run_cli("policy", "pin", *key, "--policy-version", "v1", "--token-file", str(admin))
    assert code == 0 and out.startswith("v1+pin")


def test_the_cli_says_what_is_wrong_with_the_service_or_the_credential(
    fleet: Fleet, operated: SecureService, tmp_path: Path
) -> None:
    key = ["--edge-model-version", EDGE_MODEL.version, "--cohort", "beta"]
    wrong = token_file(tmp_path, "wrong.token", "crt_" + "A" * 43)
    code, _, err = run_cli("policy", "history", *key, "--service", operated.target, "--token-file", str(wrong))
    assert code == 1 and "did not accept the operator credential" in err
    code, _, err = run_cli("policy", "history", *key, "--service", "127.0.0.1:9", "--token-file", str(wrong))
    assert code == 1 and "cannot reach the service at 127.0.0.1:9" in err
    code, _, err = run_cli("policy", "history", *key, "--service", operated.target)
    assert code == 2 and "needs an operator credential" in err
    wrong.chmod(0o644)
    code, _, err = run_cli("policy", "history", *key, "--service", operated.target, "--token-file", str(wrong))
    assert code == 2 and "chmod 600" in err


def test_an_operator_certificate_works_on_an_mtls_listener(
    fleet: Fleet, secure_service: SecureFactory, tmp_path: Path
) -> None:
    service = secure_service(mtls=True, policy_store=lambda: RedisPolicyStore(PolicyStoreConfig(url=fleet.redis_url)))
    out = tmp_path / "ops"
    fleet.cli("devices", "enroll", "ops-cert", "--operator", "--role", "policy-admin", "--credential", "cert",
              "--out", str(out))
    code, printed, err = run_cli(
        "policy", "set", "--edge-model-version", "b1", "--edge-model-id", "m", "--policy-version", "v1",
        "--service", service.target, "--root-certs", str(out / "ca.pem"),
        "--client-cert", str(out / "ops-cert.pem"), "--client-key", str(out / "ops-cert.key"))
    assert code == 0 and '"policyVersion": "v1"' in printed, err
    device = fleet.enroll_cert("dev-c")
    stub = admin_stub(service, device)
    assert code_of(lambda: stub.GetRollout(request_for("GetRollout"), timeout=T)) == "PERMISSION_DENIED"


def test_a_service_that_authenticates_nobody_refuses_operator_commands() -> None:
    with pytest.raises(PermissionDenied, match="authenticates"):
        require_operator(None, POLICY_READ)


def test_a_service_without_rollouts_says_it_has_no_operator_surface(
    fleet: Fleet, secure_service: SecureFactory, tmp_path: Path
) -> None:
    service = secure_service(mtls=False)  # an in-memory policy store: no rollouts, no PolicyAdminService
    token = token_file(tmp_path, "ops.token", fleet.enroll_token("ops-ro", "", "--operator"))
    code, _, err = run_cli("policy", "history", "--edge-model-version", "b1", "--service", service.target,
                           "--token-file", str(token))
    assert code == 1 and "has no operator surface" in err
