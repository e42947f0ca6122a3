"""A principal: an enrolled device or operator, as the service keeps it (JSON in Redis).

A device's record names its cohort; what it may do is its ``scopes``. An operator has a role, which
stands for a fixed set of scopes. The credential itself is never stored: only the keyed hash of the
current bearer token and the serial number of the current certificate, so that a rotated-out credential
no longer matches its record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from confroute.errors import InvalidInput

Kind = Literal["device", "operator"]
KINDS: tuple[Kind, ...] = ("device", "operator")

ESCALATE = "escalate"
UPLOAD = "upload"
WATCH = "watch"
POLICY_READ = "policy:read"
POLICY_WRITE = "policy:write"
DEVICE_SCOPES = frozenset({ESCALATE, UPLOAD, WATCH})
ROLES: dict[str, frozenset[str]] = {
    "read-only": frozenset({POLICY_READ}),
    "policy-admin": frozenset({POLICY_READ, POLICY_WRITE}),
}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_id(principal_id: str, field: str = "device_id") -> str:
    """``principal_id`` if it is 1-128 characters of ``[A-Za-z0-9._-]`` starting with a letter or digit."""
    if not _ID.fullmatch(principal_id):
        raise InvalidInput(f"{field} must be 1-128 characters of [A-Za-z0-9._-], got {principal_id!r}", field=field)
    return principal_id


@dataclass(frozen=True)
class Principal:
    """An enrolled caller. Times are Unix seconds; ``expires_at_s`` 0 never expires."""

    principal_id: str
    kind: Kind
    cohort: str
    created_at_s: int
    expires_at_s: int
    scopes: frozenset[str]
    role: str = ""
    token_hash: str = ""
    cert_serial: str = ""
    revoked: bool = False

    def __post_init__(self) -> None:
        check_id(self.principal_id)
        if self.kind not in KINDS:
            raise InvalidInput(f"kind must be one of {KINDS}, got {self.kind!r}", field="kind")
        if self.kind == "operator" and self.role not in ROLES:
            raise InvalidInput(f"an operator's role must be one of {sorted(ROLES)}, got {self.role!r}", field="role")

    @property
    def is_device(self) -> bool:
        return self.kind == "device"

    def usable_at(self, now_s: float) -> bool:
        """Not revoked and not expired at ``now_s``."""
        return not self.revoked and (self.expires_at_s == 0 or now_s < self.expires_at_s)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def with_credentials(self, *, token_hash: str | None = None, cert_serial: str | None = None) -> Principal:
        """The record with its current credentials replaced (None: kept)."""
        return replace(
            self,
            token_hash=self.token_hash if token_hash is None else token_hash,
            cert_serial=self.cert_serial if cert_serial is None else cert_serial,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.principal_id,
                "kind": self.kind,
                "cohort": self.cohort,
                "created_at_s": self.created_at_s,
                "expires_at_s": self.expires_at_s,
                "scopes": sorted(self.scopes),
                "role": self.role,
                "token_hash": self.token_hash,
                "cert_serial": self.cert_serial,
                "revoked": self.revoked,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Principal:
        data: dict[str, Any] = json.loads(text)
        return cls(
            principal_id=str(data["id"]),
            kind=data["kind"],
            cohort=str(data["cohort"]),
            created_at_s=int(data["created_at_s"]),
            expires_at_s=int(data["expires_at_s"]),
            scopes=frozenset(str(s) for s in data["scopes"]),
            role=str(data.get("role", "")),
            token_hash=str(data.get("token_hash", "")),
            cert_serial=str(data.get("cert_serial", "")),
            revoked=bool(data.get("revoked", False)),
        )

    def summary(self) -> str:
        """One line for ``devices list``: never a credential or its hash."""
        state = "revoked" if self.revoked else "active"
        expires = str(self.expires_at_s) if self.expires_at_s else "never"
        creds = ",".join(name for name, held in (("token", self.token_hash), ("cert", self.cert_serial)) if held)
        who = f"cohort={self.cohort}" if self.is_device else f"role={self.role}"
        return (f"{self.principal_id}  {self.kind}  {who}  {state}  created={self.created_at_s}  "
                f"expires={expires}  credentials={creds or '-'}  scopes={','.join(sorted(self.scopes))}")
