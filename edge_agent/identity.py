"""The device's identity: a stable unique id, never the hostname, and its credential kept private.

- :func:`stable_device_id`: derived from ``/etc/machine-id`` (hashed with an application key, as systemd
  recommends, so the raw machine id never leaves the device), or else a random UUID persisted in the
  state folder beside the outbox. Every stock image shares a hostname (``raspberrypi``); these do not.
- :func:`read_secret` / :func:`write_secret`: a token or API key in a file of mode 0600; a file that
  others may read is refused, as ssh refuses a private key with open permissions.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import uuid
from pathlib import Path

from confroute.errors import InvalidInput

MACHINE_ID = Path("/etc/machine-id")
DEVICE_ID_FILE = "device-id"
_APP_KEY = b"confroute-device-id-v1:"
_MACHINE_ID = re.compile(r"[0-9a-f]{32}")


def stable_device_id(state_dir: Path, machine_id: Path = MACHINE_ID) -> str:
    """``m-<32 hex>`` from the machine id, or the ``u-<uuid>`` persisted in ``state_dir/device-id``."""
    try:
        raw = machine_id.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raw = ""
    if _MACHINE_ID.fullmatch(raw):
        return "m-" + hashlib.sha256(_APP_KEY + raw.encode()).hexdigest()[:32]
    return _persisted_uuid(state_dir / DEVICE_ID_FILE)


def _persisted_uuid(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    created = f"u-{uuid.uuid4()}"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(created + "\n")
        out.flush()
        os.fsync(out.fileno())
    return created


def write_secret(path: Path, secret: str) -> None:
    """Writes a credential readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(secret + "\n")


def read_secret(path: Path, name: str) -> str:
    """The credential in ``path``; InvalidInput when unreadable, empty, or readable by group or others."""
    try:
        mode = path.stat().st_mode
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the {name} file {path}: {exc}", field=name) from exc
    if stat.S_IMODE(mode) & 0o077:
        raise InvalidInput(f"the {name} file {path} is readable by others: chmod 600 it", field=name)
    if not secret:
        raise InvalidInput(f"the {name} file {path} is empty", field=name)
    return secret
