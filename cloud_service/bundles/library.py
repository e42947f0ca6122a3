"""Bundle folders on the service's file system: ``<bundle-dir>/<content version>/``, one per published bundle,
shared by every cohort that runs it. A bundle is copied in whole (``write_atomically``: a folder there is
complete or absent) and never changed afterwards; the files a device may read are those its release lists."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from confroute.bundle.manifest import Manifest
from confroute.bundle.store import MANIFEST_FILE, load_bundle, sha256_file, write_atomically
from confroute.contract.bundle_release import BundleFile, check_file_name
from confroute.errors import BundleCorrupt, BundleNotFound


@dataclass(frozen=True)
class StoredBundle:
    """A bundle in the library: its manifest and every file a release lists (manifest.json included)."""

    manifest: Manifest
    files: tuple[BundleFile, ...]


class BundleLibrary:
    """The bundles under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, folder: Path) -> StoredBundle:
        """Copies the bundle at ``folder`` in (checked first: every sha256 of its manifest); a bundle already
        there under the same content version is kept as it is."""
        manifest = load_bundle(folder)
        dest = self.root / manifest.version
        if (dest / MANIFEST_FILE).is_file():
            os.utime(dest)  # published again: the newest for pruning (:meth:`added_at`)
        else:
            with write_atomically(dest) as staging:
                for name in (*sorted(manifest.files), MANIFEST_FILE):
                    target = staging / check_file_name(name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(folder / name, target)
        return self.stored(manifest.version)

    def stored(self, version: str) -> StoredBundle:
        """The bundle of content ``version`` with its files described (sizes, sha256 from its manifest)."""
        folder = self.root / check_file_name(version, "bundle_version")
        manifest = load_bundle(folder)
        if manifest.version != version:
            raise BundleCorrupt(f"{folder} holds bundle {manifest.version}, not {version}")
        hashes = {**manifest.files, MANIFEST_FILE: sha256_file(folder / MANIFEST_FILE)}
        files = tuple(BundleFile(name, (folder / name).stat().st_size, hashes[name]) for name in sorted(hashes))
        return StoredBundle(manifest, files)

    def path(self, version: str, name: str) -> Path:
        """The file ``name`` of bundle ``version`` (names are checked: nothing outside the library is reachable)."""
        path = self.root / check_file_name(version, "bundle_version") / check_file_name(name)
        if not path.is_file():
            raise BundleNotFound(f"bundle {version} has no file {name!r} on this service")
        return path

    def versions(self) -> list[str]:
        """The content versions held, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if (p / MANIFEST_FILE).is_file() and not p.name.startswith("."))

    def added_at(self, version: str) -> float:
        """When bundle ``version`` was last published (its folder's mtime, in seconds since the epoch)."""
        return (self.root / check_file_name(version, "bundle_version")).stat().st_mtime

    def remove(self, version: str) -> None:
        """Deletes bundle ``version``: renamed aside first (a dot name, which :meth:`versions` skips), so it
        disappears at once and whole even if the deletion is interrupted; streams already open keep reading."""
        folder = self.root / check_file_name(version, "bundle_version")
        doomed = folder.with_name(f".{version}.{uuid.uuid4().hex}.pruned")
        os.replace(folder, doomed)
        shutil.rmtree(doomed)
        for leftover in self.root.glob(".*.pruned"):  # a deletion interrupted before
            shutil.rmtree(leftover, ignore_errors=True)
