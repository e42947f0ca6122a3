"""Updating the device's bundle to its cohort's current release, and rolling it back.

An update: the release is read and its signature checked (trusted keys: the policy keys), a bundle already at
that version is left alone, the disk is checked for what the download still needs (refused up front), the
files are fetched into the staging folder (resumed after a kill), every sha256 is checked against the signed
release and the bundle's own manifest checked by ``load_bundle``, and then one atomic swap
(:func:`confroute.bundle.store.swap_in`) makes it the bundle while the old one is kept at ``<bundle>.previous``.
Any refusal before the swap leaves the bundle in use untouched. A running agent keeps serving the bundle it
loaded (its files stay open across the renames) until it is restarted.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confroute.backoff import Backoff
from confroute.bundle.store import MANIFEST_FILE, load_bundle, previous_of, settle_swap, swap_in
from confroute.contract.bundle_release import BundleRelease
from confroute.errors import BundleCorrupt, BundleError, BundleNotFound, DeadlineExceeded, Overloaded, Unavailable
from edge_agent.bundles.disk import FreeSpace, free_bytes, require_space
from edge_agent.bundles.download import Staging
from edge_agent.bundles.source import BundleSource

logger = logging.getLogger(__name__)

ReleaseCheck = Callable[[BundleRelease], None]  # raises BundleCorrupt unless the release is signed by a trusted key
STAGING_FOLDER = "bundle-download"
RETRIES = 3  # a dropped stream is resumed from what is on disk, after a jittered wait
RETRY_BACKOFF = Backoff(base_s=1.0, cap_s=10.0)
_TRANSIENT = (Unavailable, DeadlineExceeded, Overloaded)


@dataclass(frozen=True)
class UpdateResult:
    """What an update did: ``installed`` a new bundle, or found the device ``current`` already."""

    outcome: str
    bundle_version: str
    previous_version: str | None = None
    downloaded_bytes: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"outcome": self.outcome, "bundle_version": self.bundle_version,
                "previous_version": self.previous_version, "downloaded_bytes": self.downloaded_bytes}


class BundleUpdater:
    """Keeps the bundle at ``dest`` at the release ``source`` offers to ``cohort``."""

    def __init__(self, dest: Path, state_dir: Path, source: BundleSource, check: ReleaseCheck, cohort: str,
                 free_space: FreeSpace = free_bytes, retries: int = RETRIES, backoff: Backoff = RETRY_BACKOFF,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._dest = dest
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._staging = Staging(state_dir / STAGING_FOLDER)
        self._source = source
        self._check = check
        self._cohort = cohort
        self._free_space = free_space

    def update(self) -> UpdateResult:
        with self._staging.exclusive():
            return self._update()

    def _update(self) -> UpdateResult:
        settle_swap(self._dest)
        release = self._source.release()
        self._check(release)
        if release.cohort != self._cohort:
            raise BundleCorrupt(f"the release is for cohort {release.cohort!r}, this device is in {self._cohort!r}")
        installed = installed_version(self._dest)
        if installed == release.bundle_version:
            self._staging.clear()
            return UpdateResult("current", release.bundle_version, previous_version=None)
        needed = self._staging.remaining_bytes(release)
        require_space(self._staging.root, needed, self._free_space, f"bundle {release.bundle_version}")
        if not _same_file_system(self._staging.root, self._dest.parent):
            require_space(self._dest.parent, release.total_bytes, self._free_space,
                          f"bundle {release.bundle_version} (copied beside {self._dest.name})")
        self._fetch(release)
        folder = self._staging.verify(release)
        _check_manifest(folder, release)
        _install(folder, self._dest)
        self._staging.clear()
        logger.info("bundle %s installed at %s (previous: %s, kept at %s)", release.bundle_version, self._dest,
                    installed, previous_of(self._dest))
        return UpdateResult("installed", release.bundle_version, installed, needed)

    def _fetch(self, release: BundleRelease) -> None:
        """The download, resumed after a dropped stream up to ``retries`` times within this run (after that,
        the next run resumes it)."""
        rng = random.Random()
        for attempt in range(self._retries + 1):
            try:
                self._staging.fetch(release, self._source)
                return
            except _TRANSIENT as exc:
                if attempt == self._retries:
                    raise
                delay = self._backoff.delay(attempt, rng)
                logger.warning("bundle download interrupted (%s); resuming in %.1f s", exc, delay)
                self._sleep(delay)


def rollback(dest: Path, state_dir: Path) -> UpdateResult:
    """Makes the kept previous bundle the bundle again (the current one becomes the previous); not while an
    update of the same state folder runs."""
    with Staging(state_dir / STAGING_FOLDER).exclusive():
        return _rollback(dest)


def _rollback(dest: Path) -> UpdateResult:
    settle_swap(dest)
    previous = previous_of(dest)
    if not (previous / MANIFEST_FILE).is_file():
        raise BundleNotFound(f"no previous bundle kept at {previous}: nothing to roll back to")
    manifest = load_bundle(previous)
    current = installed_version(dest)
    swap_in(previous, dest)
    return UpdateResult("rolled_back", manifest.version, current)


def installed_version(dest: Path) -> str | None:
    """The content version of the bundle at ``dest``; None when there is none (or it does not load)."""
    try:
        return load_bundle(dest, verify=False).version
    except BundleError:
        return None


def _check_manifest(folder: Path, release: BundleRelease) -> None:
    """The staged bundle loads (its manifest's own sha256 checks) and is the one the release names, file for file."""
    manifest = load_bundle(folder)
    if manifest.version != release.bundle_version:
        raise BundleCorrupt(f"the staged bundle is {manifest.version}, the release names {release.bundle_version}")
    if {*manifest.files, MANIFEST_FILE} != {f.name for f in release.files}:
        raise BundleCorrupt("the release's files are not the bundle manifest's files")


def _install(folder: Path, dest: Path) -> None:
    """Swaps ``folder`` in at ``dest``; from another file system it is first copied beside ``dest`` (into a
    ``.<name>.*.partial`` folder, which ``write_atomically`` clears should a kill leave one)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if _same_file_system(folder, dest.parent):
        swap_in(folder, dest)
        return
    beside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        shutil.copytree(folder, beside, dirs_exist_ok=True)
        swap_in(beside, dest)
    except BaseException:
        shutil.rmtree(beside, ignore_errors=True)
        raise


def _same_file_system(a: Path, b: Path) -> bool:
    return _device(a) == _device(b)


def _device(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    return os.stat(path).st_dev
