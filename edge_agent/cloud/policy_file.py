"""The last good policy on disk, in the protobuf JSON form that ``cloud-service policy set --file`` reads.

Writes are atomic: a temporary file in the same folder is written, flushed and fsynced, then renamed over
the old one and the folder fsynced, so a crash or power cut leaves either the old policy or the new one
(and at most a temporary file, which the next write deletes).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from google.protobuf import json_format

from confroute.contract import Policy
from confroute.errors import InvalidPolicy
from confroute.v1 import fleet_pb2


def save_policy(path: Path, policy: Policy) -> None:
    """Replaces the file at ``path`` with ``policy``, atomically. Raises OSError when it cannot."""
    text: str = json_format.MessageToJson(policy.to_pb(), indent=2)
    write_atomically(path, text.encode("utf-8"))


def load_policy(path: Path) -> Policy:
    """The policy saved at ``path``, with the wire checks applied. OSError if unreadable, else InvalidPolicy."""
    raw = path.read_bytes()
    try:
        pb = json_format.Parse(raw.decode("utf-8"), fleet_pb2.Policy())
    except (ValueError, json_format.ParseError) as exc:
        raise InvalidPolicy(f"{path} does not hold a policy: {exc}") from exc
    return Policy.from_pb(pb)


def write_atomically(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that readers see the old content or the new, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def _remove_leftovers(path: Path) -> None:
    """Deletes the temporary files of earlier writes to ``path`` that a crash (kill -9, power cut) cut short,
    so that they do not pile up on the device's disk. One process writes a given path."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def _fsync_folder(folder: Path) -> None:
    """Makes the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
