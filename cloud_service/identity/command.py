"""``cloud-service ca init|server-cert`` and ``cloud-service devices enroll|list|show|revoke|rotate``.

Enrolment creates the principal's record and its credentials: a bearer token (printed once, or
written 0600 to ``--token-file``; only its keyed hash is stored) and/or a device certificate from the
fleet CA (``--out DIR``: ``<id>.pem``, ``<id>.key`` 0600 and the CA's ``ca.pem``). ``--operator --role``
enrols an operator instead (roles: read-only, policy-admin). Settings: ``--redis-url`` /
``CONFROUTE_CLOUD_REDIS_URL``, ``--identity-secret`` / ``CONFROUTE_CLOUD_IDENTITY_SECRET`` (the token
HMAC key file), ``--ca-dir`` / ``CONFROUTE_CLOUD_CA_DIR``. ``list`` and ``show`` add what the service last saw
of each device (``cloud_service.ops.devices_command``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cloud_service.identity.ca import CA_CERT, SECRET, FleetCA, IssuedCert, init_ca, write_private
from cloud_service.identity.record import DEVICE_SCOPES, ROLES, Principal, check_id
from cloud_service.identity.registry import IdentityRegistry
from cloud_service.identity.tokens import TokenHasher, load_secret, new_token
from cloud_service.ops import devices_command
from cloud_service.redis_client import RedisClient, connect
from confroute.errors import InvalidInput

CREDENTIALS = ("token", "cert", "both")
DEFAULT_DAYS = 365


def add_commands(commands: Any) -> None:
    """Adds ``ca`` and ``devices`` to the ``cloud-service`` subcommands."""
    ca = commands.add_parser("ca", help="the fleet CA that issues device and server certificates")
    ca_actions = ca.add_subparsers(required=True, metavar="ACTION")
    init = ca_actions.add_parser("init", help="create the CA key, certificate and token secret in --ca-dir")
    init.add_argument("--ca-dir", default=None, help="env CONFROUTE_CLOUD_CA_DIR")
    init.add_argument("--name", default="confroute fleet CA")
    init.set_defaults(run=_ca_init)
    server = ca_actions.add_parser("server-cert", help="issue the service's TLS certificate")
    server.add_argument("--ca-dir", default=None, help="env CONFROUTE_CLOUD_CA_DIR")
    server.add_argument("--host", action="append", required=True, help="DNS name or IP address (repeatable)")
    server.add_argument("--out", type=Path, required=True, help="writes OUT.pem and OUT.key")
    server.add_argument("--days", type=int, default=DEFAULT_DAYS)
    server.set_defaults(run=_server_cert)
    devices = commands.add_parser("devices", help="enrol, list, revoke and rotate device and operator credentials")
    actions = devices.add_subparsers(required=True, metavar="ACTION")
    enroll = actions.add_parser("enroll", help="create a device (or operator) and its credential")
    _store_arguments(enroll)
    enroll.add_argument("principal_id", metavar="ID", help="the device's stable id (e.g. its machine-id)")
    enroll.add_argument("--cohort", default="default")
    enroll.add_argument("--operator", action="store_true", help="an operator, not a device")
    enroll.add_argument("--role", choices=sorted(ROLES), default="read-only", help="an operator's role")
    _credential_arguments(enroll)
    enroll.set_defaults(run=_enroll)
    listing = actions.add_parser("list", help="every enrolled principal (never a credential) and device seen")
    _store_arguments(listing)
    devices_command.add_list_arguments(listing)
    listing.set_defaults(run=lambda args: _with_redis(args, lambda redis: devices_command.list_devices(args, redis)))
    show = actions.add_parser("show", help="one device: its enrolment, the versions it runs, when it was last seen")
    _store_arguments(show)
    devices_command.add_show_arguments(show)
    show.set_defaults(run=lambda args: _with_redis(args, lambda redis: devices_command.show_device(args, redis)))
    for name, text in (("revoke", "refuse the principal's credentials everywhere"),
                       ("rotate", "issue new credentials; the old ones stop working")):
        command = actions.add_parser(name, help=text)
        _store_arguments(command)
        command.add_argument("principal_id", metavar="ID")
        if name == "rotate":
            _credential_arguments(command)
        command.set_defaults(run=_revoke if name == "revoke" else _rotate)


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="env CONFROUTE_CLOUD_REDIS_URL")
    parser.add_argument("--identity-secret", default=None,
                        help="the token HMAC key file; env CONFROUTE_CLOUD_IDENTITY_SECRET")
    parser.add_argument("--ca-dir", default=None, help="env CONFROUTE_CLOUD_CA_DIR")


def _credential_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--credential", choices=CREDENTIALS, default="token")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="expiry of the record and certificate; 0: never")
    parser.add_argument("--token-file", type=Path, default=None, help="write the token here (0600) instead of printing")
    parser.add_argument("--out", type=Path, default=None, help="folder for the certificate, its key and ca.pem")


def _setting(args: argparse.Namespace, name: str, default: str = "") -> str:
    value = getattr(args, name, None)
    return str(value) if value is not None else os.environ.get("CONFROUTE_CLOUD_" + name.upper(), default)


def _ca_dir(args: argparse.Namespace) -> Path:
    folder = _setting(args, "ca_dir")
    if not folder:
        raise InvalidInput("set --ca-dir or CONFROUTE_CLOUD_CA_DIR", field="ca_dir")
    return Path(folder)


def _ca_init(args: argparse.Namespace) -> int:
    folder = init_ca(_ca_dir(args), args.name)
    print(f"fleet CA  {folder / CA_CERT} (give to the service: --tls-client-ca, and to devices)\n"
          f"token key {folder / SECRET} (give to the service: --identity-secret)")
    return 0


def _server_cert(args: argparse.Namespace) -> int:
    ca = FleetCA.load(_ca_dir(args))
    issued = ca.issue_server(tuple(args.host), _expiry(args.days) or ca.cert.not_valid_after_utc)
    _write_cert(issued, Path(f"{args.out}.pem"), Path(f"{args.out}.key"))
    print(f"server certificate {args.out}.pem, key {args.out}.key (serial {issued.serial})")
    return 0


def _expiry(days: int) -> dt.datetime | None:
    if days < 0:
        raise InvalidInput(f"days must be >= 0, got {days}", field="days")
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days) if days else None


def _write_cert(issued: IssuedCert, cert: Path, key: Path) -> None:
    cert.parent.mkdir(parents=True, exist_ok=True)
    cert.write_bytes(issued.cert_pem)
    write_private(key, issued.key_pem)


def _with_registry(args: argparse.Namespace, action: Callable[[IdentityRegistry], Awaitable[int]]) -> int:
    return _with_redis(args, lambda redis: action(IdentityRegistry(redis)))


def _with_redis(args: argparse.Namespace, action: Callable[[RedisClient], Awaitable[int]]) -> int:
    async def run() -> int:
        redis = connect(_setting(args, "redis_url", "redis://127.0.0.1:6379/0"), connect_timeout_s=2.0,
                        command_timeout_s=5.0)
        try:
            return await action(redis)
        finally:
            await redis.aclose()

    return asyncio.run(run())


class _Issuer:
    """Makes the credentials one enrolment or rotation asks for, and hands them out."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self.token = ""
        self.token_hash: str | None = None
        self.cert: IssuedCert | None = None
        self._ca: FleetCA | None = None

    def issue(self, principal_id: str) -> None:
        kind = self._args.credential
        if kind in ("token", "both"):
            self.token = new_token()
            self.token_hash = self._hasher().hash(self.token)
        if kind in ("cert", "both"):
            self._ca = FleetCA.load(_ca_dir(self._args))
            not_after = _expiry(self._args.days) or self._ca.cert.not_valid_after_utc
            self.cert = self._ca.issue_device(principal_id, not_after)

    def _hasher(self) -> TokenHasher:
        secret = _setting(self._args, "identity_secret")
        if not secret:
            raise InvalidInput("tokens need --identity-secret or CONFROUTE_CLOUD_IDENTITY_SECRET",
                               field="identity_secret")
        return load_secret(Path(secret))

    def hand_out(self, principal_id: str) -> None:
        """Writes or prints the credentials: the token is shown this once and never again."""
        if self.cert is not None and self._ca is not None:
            out: Path = self._args.out or Path(".")
            _write_cert(self.cert, out / f"{principal_id}.pem", out / f"{principal_id}.key")
            shutil.copyfile(_ca_dir(self._args) / CA_CERT, out / CA_CERT)
            print(f"certificate {out / principal_id}.pem, key {out / principal_id}.key (0600), CA {out / CA_CERT}")
        if self.token:
            if self._args.token_file is not None:
                write_private(self._args.token_file, (self.token + "\n").encode())
                print(f"token written to {self._args.token_file} (0600); it is not stored anywhere else")
            else:
                print(f"token {self.token}\n(shown once: only its keyed hash is stored)")


def _enroll(args: argparse.Namespace) -> int:
    principal_id = check_id(args.principal_id)
    issuer = _Issuer(args)
    issuer.issue(principal_id)
    now = int(time.time())
    expires = _expiry(args.days)
    record = Principal(
        principal_id=principal_id,
        kind="operator" if args.operator else "device",
        cohort="" if args.operator else args.cohort,
        created_at_s=now,
        expires_at_s=int(expires.timestamp()) if expires else 0,
        scopes=ROLES[args.role] if args.operator else DEVICE_SCOPES,
        role=args.role if args.operator else "",
        token_hash=issuer.token_hash or "",
        cert_serial=issuer.cert.serial if issuer.cert else "",
    )

    async def create(registry: IdentityRegistry) -> int:
        await registry.create(record)
        return 0

    code = _with_registry(args, create)
    print(record.summary())
    issuer.hand_out(principal_id)
    return code


def _revoke(args: argparse.Namespace) -> int:
    async def revoke(registry: IdentityRegistry) -> int:
        print((await registry.revoke(args.principal_id)).summary())
        return 0

    return _with_registry(args, revoke)


def _rotate(args: argparse.Namespace) -> int:
    principal_id = check_id(args.principal_id)
    issuer = _Issuer(args)
    issuer.issue(principal_id)

    async def rotate(registry: IdentityRegistry) -> int:
        updated = await registry.replace_credentials(
            principal_id,
            token_hash=issuer.token_hash if issuer.token_hash else "",
            cert_serial=issuer.cert.serial if issuer.cert else "",
        )
        print(updated.summary())
        return 0

    code = _with_registry(args, rotate)
    issuer.hand_out(principal_id)
    return code
