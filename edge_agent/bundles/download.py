"""The staging folder of a bundle download: ``<state dir>/bundle-download/<bundle version>/``.

Each file is appended to chunk by chunk, so what a killed or cut-off download leaves is a prefix of every file
it was fetching: the next run resumes each file from its size on disk (a file longer than the release says is
fetched again). Nothing here is trusted until :meth:`Staging.verify` has checked every file's sha256 against
the signed release; a file that fails is deleted (fetched whole next time) and the download refused. Folders
of other versions (an abandoned release) are removed when a download starts. One update runs at a time per
state folder (:meth:`Staging.exclusive`, an advisory lock the kernel drops with its process).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from confroute.bundle.store import sha256_file
from confroute.contract.bundle_release import BundleRelease, check_file_name
from confroute.errors import BundleCorrupt, Unavailable
from edge_agent.bundles.source import BundleSource

logger = logging.getLogger(__name__)


class Staging:
    """Downloads under ``root`` (one folder per release being fetched)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Holds the staging root's lock; Unavailable at once when another update holds it."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with open(self.root.with_name(f"{self.root.name}.lock"), "a+b") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise Unavailable(f"another bundle update is running on {self.root.parent}") from exc
            yield

    def folder(self, release: BundleRelease) -> Path:
        return self.root / check_file_name(release.bundle_version, "bundle_version")

    def remaining_bytes(self, release: BundleRelease) -> int:
        """Bytes still to fetch (what a resumed download needs on disk)."""
        folder = self.folder(release)
        return sum(f.size - _resumable(folder / f.name, f.size) for f in release.files)

    def fetch(self, release: BundleRelease, source: BundleSource) -> None:
        """Every file of ``release`` complete in :meth:`folder` (by size), resuming what is there."""
        folder = self.folder(release)
        self._drop_others(folder)
        for entry in release.files:
            path = folder / entry.name
            have = _resumable(path, entry.size)
            if have == entry.size:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if have == 0:
                path.unlink(missing_ok=True)
            logger.info("fetching %s of bundle %s from byte %d of %d", entry.name, release.bundle_version, have,
                        entry.size)
            _append(path, source.read(release, entry.name, have), entry.size - have)

    def verify(self, release: BundleRelease) -> Path:
        """The folder, once every file matches its sha256 in the release; a file that does not is deleted."""
        folder = self.folder(release)
        for entry in release.files:
            path = folder / entry.name
            if sha256_file(path) != entry.sha256:
                path.unlink()
                raise BundleCorrupt(f"{entry.name} of bundle {release.bundle_version} does not match the sha256 "
                                    "of its signed release: deleted, the bundle in use is kept")
        return folder

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _drop_others(self, keep: Path) -> None:
        if self.root.is_dir():
            for other in self.root.iterdir():
                if other != keep:
                    shutil.rmtree(other, ignore_errors=True)


def _resumable(path: Path, size: int) -> int:
    """Bytes of ``path`` a resumed download keeps: its length, unless longer than the file should be."""
    try:
        have = path.stat().st_size
    except FileNotFoundError:
        return 0
    return have if have <= size else 0


def _append(path: Path, chunks: Iterable[bytes], expected: int) -> None:
    """Appends ``chunks`` to ``path`` (each write reaches the file before the next is read), then fsyncs."""
    received = 0
    with open(path, "ab") as f:
        for chunk in chunks:
            received += len(chunk)
            if received > expected:
                raise BundleCorrupt(f"{path.name}: the service sent more bytes than the release lists")
            f.write(chunk)
            f.flush()
        os.fsync(f.fileno())
    if received != expected:
        raise Unavailable(f"{path.name}: the stream ended {expected - received} bytes short; run it again to resume")
