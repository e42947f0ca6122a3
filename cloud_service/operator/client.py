"""The operators' policy commands through the service: :class:`RemoteAdmin` (a
:class:`~cloud_service.operator.admin.PolicyAdmin` over ``PolicyAdminService``) and the CLI's flags.

``--service HOST:PORT`` (env ``CONFROUTE_OPERATOR_SERVICE``) sends the command to the service instead of
Redis; the operator's credential is a bearer token (``--token-file``, a file only its owner can read, or
env ``CONFROUTE_OPERATOR_TOKEN``) and/or a client certificate (``--client-cert``/``--client-key``, for a
listener that requires one). ``--tls`` (implied by ``--root-certs`` or a client certificate) dials with TLS,
trusting ``--root-certs`` or the system's roots. Failures are translated here, once, into errors that say
what to fix: the service unreachable (Unavailable), the credential refused (Unauthenticated), the role too
small (PermissionDenied), a bad request (InvalidInput).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from cloud_service.operator import wire
from cloud_service.operator.admin import DEFAULT_HISTORY
from cloud_service.policies.state import HistoryEntry, Rollout
from confroute.contract.metadata import AUTHORIZATION_KEY
from confroute.contract.policy import Policy
from confroute.errors import ConfrouteError, InvalidInput, PermissionDenied, Unauthenticated, Unavailable
from confroute.v1 import operator_pb2, operator_pb2_grpc

DEFAULT_TIMEOUT_S = 10.0
_ENV = "CONFROUTE_OPERATOR_"


@dataclass(frozen=True)
class ServiceTarget:
    """Where the service listens and the operator's credential (repr never shows the token or key)."""

    address: str
    token: str = ""
    tls: bool = False
    root_certs: bytes | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __repr__(self) -> str:
        return f"ServiceTarget({self.address!r}, tls={self.tls}, token={'yes' if self.token else 'no'})"

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((AUTHORIZATION_KEY, f"Bearer {self.token}"),) if self.token else ()


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """``--service`` and the operator's credential flags."""
    group = parser.add_argument_group("through the service (instead of Redis)")
    group.add_argument("--service", default=None, metavar="HOST:PORT", help=f"env {_ENV}SERVICE")
    group.add_argument("--token-file", type=Path, default=None,
                       help=f"the operator's bearer token (mode 0600); env {_ENV}TOKEN_FILE or {_ENV}TOKEN")
    group.add_argument("--tls", action="store_true", help="dial with TLS (implied by --root-certs or --client-cert)")
    group.add_argument("--root-certs", type=Path, default=None, help="CA certificate of the service (PEM)")
    group.add_argument("--client-cert", type=Path, default=None, help="the operator's certificate (PEM)")
    group.add_argument("--client-key", type=Path, default=None, help="its private key (PEM, mode 0600)")
    group.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per call")


def target_from(args: argparse.Namespace, environ: Mapping[str, str]) -> ServiceTarget | None:
    """The service to ask, or None when neither ``--service`` nor its variable is set (the Redis path)."""
    address = getattr(args, "service", None) or environ.get(_ENV + "SERVICE", "")
    if not address:
        return None
    token_file = args.token_file or (Path(environ[_ENV + "TOKEN_FILE"]) if environ.get(_ENV + "TOKEN_FILE") else None)
    token = _read_secret(token_file, "token_file").decode().strip() if token_file else environ.get(_ENV + "TOKEN", "")
    if bool(args.client_cert) != bool(args.client_key):
        raise InvalidInput("--client-cert and --client-key go together", field="client_cert")
    cert = _read(args.client_cert, "client_cert") if args.client_cert else None
    key = _read_secret(args.client_key, "client_key") if args.client_key else None
    if not token and cert is None:
        raise InvalidInput(f"--service needs an operator credential: --token-file, {_ENV}TOKEN or --client-cert",
                           field="token_file")
    roots = _read(args.root_certs, "root_certs") if args.root_certs else None
    return ServiceTarget(address, token, bool(args.tls or roots or cert), roots, cert, key, args.timeout)


class RemoteAdmin:
    """:class:`~cloud_service.operator.admin.PolicyAdmin` through the service's ``PolicyAdminService``."""

    def __init__(self, channel: grpc.aio.Channel, target: ServiceTarget) -> None:
        self._stub: Any = operator_pb2_grpc.PolicyAdminServiceStub(channel)  # type: ignore[no-untyped-call]
        self._target = target

    async def rollout(self, edge_model_version: str, cohort: str) -> Rollout:
        request = operator_pb2.GetRolloutRequest(key=wire.key_to_pb(edge_model_version, cohort))
        return wire.rollout_from_pb(await self._call("GetRollout", request))

    async def version(self, edge_model_version: str, cohort: str, version: str) -> Policy | None:
        request = operator_pb2.GetVersionRequest(key=wire.key_to_pb(edge_model_version, cohort), version=version)
        reply = await self._call("GetVersion", request)
        return Policy.from_pb(reply.policy) if reply.HasField("policy") else None

    async def history(self, edge_model_version: str, cohort: str, count: int = DEFAULT_HISTORY
                      ) -> list[HistoryEntry]:
        request = operator_pb2.GetHistoryRequest(key=wire.key_to_pb(edge_model_version, cohort), count=count)
        return wire.history_from_pb(await self._call("GetHistory", request))

    async def set_policy(self, policy: Policy, reason: str) -> Policy:
        reply = await self._call("SetPolicy", operator_pb2.SetPolicyRequest(policy=policy.to_pb(), reason=reason))
        return Policy.from_pb(reply.policy)

    async def promote(self, edge_model_version: str, cohort: str, reason: str) -> str:
        return await self._change("Promote", edge_model_version, cohort, reason)

    async def rollback(self, edge_model_version: str, cohort: str, reason: str) -> str:
        return await self._change("Rollback", edge_model_version, cohort, reason)

    async def pin(self, edge_model_version: str, cohort: str, version: str, reason: str) -> str:
        request = operator_pb2.PinRequest(key=wire.key_to_pb(edge_model_version, cohort), version=version,
                                          reason=reason)
        control: str = (await self._call("Pin", request)).control
        return control

    async def unpin(self, edge_model_version: str, cohort: str, reason: str) -> str:
        return await self._change("Unpin", edge_model_version, cohort, reason)

    async def _change(self, method: str, edge_model_version: str, cohort: str, reason: str) -> str:
        request = getattr(operator_pb2, f"{method}Request")(key=wire.key_to_pb(edge_model_version, cohort),
                                                            reason=reason)
        control: str = (await self._call(method, request)).control
        return control

    async def _call(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self._stub, method)(request, metadata=self._target.metadata,
                                                     timeout=self._target.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise translate(exc, self._target, method) from exc


@contextlib.asynccontextmanager
async def open_remote_admin(target: ServiceTarget) -> AsyncIterator[RemoteAdmin]:
    """A channel to the service and the admin on it, closed on the way out."""
    if target.tls:
        credentials = grpc.ssl_channel_credentials(target.root_certs, target.client_key, target.client_cert)
        channel = grpc.aio.secure_channel(target.address, credentials)
    else:
        channel = grpc.aio.insecure_channel(target.address)
    try:
        yield RemoteAdmin(channel, target)
    finally:
        await channel.close()


def translate(exc: grpc.aio.AioRpcError, target: ServiceTarget, method: str) -> ConfrouteError:
    """The domain error for a failed operator call, saying what to fix."""
    code, details = exc.code(), exc.details() or "no details"
    where = f"the service at {target.address}"
    if code == grpc.StatusCode.UNAVAILABLE:
        hint = "" if target.tls else " (does it require TLS? try --tls / --root-certs)"
        return Unavailable(f"cannot reach {where}{hint}: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable(f"{where} did not answer {method} within {target.timeout_s:g} s")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(f"{where} did not accept the operator credential: {details}")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"{where} refused {method}: {details}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInput(f"{where} refused {method}: {details}")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return Unavailable(f"{where} has no operator surface (its policy store keeps no rollouts): {details}")
    return Unavailable(f"{method} at {where} failed with {code.name}: {details}")


def _read(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {field} {path}: {exc}", field=field) from exc


def _read_secret(path: Path, field: str) -> bytes:
    """A credential file, refused when its group or others may read it (as ssh refuses an open key)."""
    data = _read(path, field)
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise InvalidInput(f"{field} {path} is readable by others: chmod 600 it", field=field)
    return data
