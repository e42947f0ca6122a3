"""A bundle release: which bundle a cohort should run, every file's size and sha256, and the signature that
lets a device trust it. Validated when built (in-process, from the wire or from JSON), so no release with a
file name that could leave the bundle folder exists. Rejections are ``InvalidInput`` naming the field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from confroute.errors import InvalidInput
from confroute.v1 import bundle_pb2

__all__ = ["BundleFile", "BundleRelease", "check_file_name"]

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_FILES = 256


def check_file_name(name: str, field: str = "name") -> str:
    """``name`` if it is a relative path of ``/``-separated parts, each 1-128 characters of ``[A-Za-z0-9._-]``
    not starting with a dot: it cannot name a hidden file, a parent folder or an absolute path."""
    parts = name.split("/")
    if not name or len(parts) > 8 or not all(_PART.fullmatch(part) for part in parts):
        raise InvalidInput(f"{field} must be a relative path of plain names, got {name!r}", field=field)
    return name


@dataclass(frozen=True)
class BundleFile:
    """One file of a bundle: its path in the bundle folder, size in bytes and sha256 (lower-case hex)."""

    name: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        check_file_name(self.name, "files.name")
        if self.size < 0:
            raise InvalidInput(f"size of {self.name} must be >= 0", field="files.size")
        if not _SHA256.fullmatch(self.sha256):
            raise InvalidInput(f"sha256 of {self.name} must be 64 lower-case hex digits", field="files.sha256")


@dataclass(frozen=True)
class BundleRelease:
    """A bundle (``bundle_version``: its manifest's content version) published for ``cohort``."""

    cohort: str
    bundle_version: str
    model_id: str
    files: tuple[BundleFile, ...]
    issued_at_us: int
    signature: bytes = b""
    key_id: str = ""

    def __post_init__(self) -> None:
        if not self.bundle_version:
            raise InvalidInput("bundle_version must be set", field="bundle_version")
        names = [f.name for f in self.files]
        if not names or len(names) > MAX_FILES:
            raise InvalidInput(f"a release lists 1-{MAX_FILES} files, got {len(names)}", field="files")
        if names != sorted(set(names)):
            raise InvalidInput("files must be sorted by name, each once", field="files")

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, name: str) -> BundleFile | None:
        return next((f for f in self.files if f.name == name), None)

    def unsigned(self) -> BundleRelease:
        return replace(self, signature=b"")

    def to_pb(self) -> bundle_pb2.BundleRelease:
        return bundle_pb2.BundleRelease(
            cohort=self.cohort, bundle_version=self.bundle_version, model_id=self.model_id,
            files=[bundle_pb2.BundleFile(name=f.name, size=f.size, sha256=f.sha256) for f in self.files],
            issued_at_us=self.issued_at_us, signature=self.signature, key_id=self.key_id)

    @classmethod
    def from_pb(cls, pb: bundle_pb2.BundleRelease) -> BundleRelease:
        return cls(cohort=pb.cohort, bundle_version=pb.bundle_version, model_id=pb.model_id,
                   files=tuple(BundleFile(f.name, f.size, f.sha256) for f in pb.files),
                   issued_at_us=pb.issued_at_us, signature=pb.signature, key_id=pb.key_id)

    def to_json(self) -> str:
        return json.dumps({
            "cohort": self.cohort, "bundle_version": self.bundle_version, "model_id": self.model_id,
            "files": [[f.name, f.size, f.sha256] for f in self.files], "issued_at_us": self.issued_at_us,
            "signature": self.signature.hex(), "key_id": self.key_id,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> BundleRelease:
        try:
            data = json.loads(text)
            return cls(cohort=str(data["cohort"]), bundle_version=str(data["bundle_version"]),
                       model_id=str(data["model_id"]),
                       files=tuple(BundleFile(str(n), int(s), str(h)) for n, s, h in data["files"]),
                       issued_at_us=int(data["issued_at_us"]), signature=bytes.fromhex(data["signature"]),
                       key_id=str(data["key_id"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"not a bundle release: {exc}", field="release") from exc
