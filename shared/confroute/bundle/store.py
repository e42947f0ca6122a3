"""Opening bundles (with checksum verification) and writing them atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from confroute.bundle.manifest import Manifest
from confroute.errors import BundleCorrupt, BundleNotFound

MANIFEST_FILE = "manifest.json"
PENDING_MANIFEST = ".manifest.json.pending"  # an in-place update's new manifest, until its files are in place
STAMP_FILE = ".verified.json"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def load_bundle(folder: str | os.PathLike[str], *, verify: bool = True) -> Manifest:
    """Reads a bundle's manifest; with ``verify`` checks every listed file's sha256.

    A successful check leaves a stamp (each file's size and mtime); while those are unchanged the next
    start skips re-hashing, which would otherwise cost ~1 s of cold start per 500 MB. The hashes guard
    against corruption and partial copies, not against someone able to rewrite the folder.
    """
    path = Path(folder)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        _put_back(path)
    if not manifest_path.is_file():
        raise BundleNotFound(f"no model bundle at {path} (missing {MANIFEST_FILE}); build one with confroute-export")
    _settle_pending(path)
    manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"))
    stats = _file_stats(path, manifest)
    if verify and _read_stamp(path) != {"version": manifest.version, "files": stats}:
        for name, expected in manifest.files.items():
            if sha256_file(path / name) != expected:
                raise BundleCorrupt(f"bundle {path}: {name} does not match its sha256 in the manifest")
        _write_stamp(path, {"version": manifest.version, "files": stats})
    return manifest


def needs_export(folder: str | os.PathLike[str]) -> bool:
    """Whether a build-on-first-use path should export ``folder``: it holds no bundle, or one this
    exporter would build a newer graph for (:attr:`Manifest.outdated`). A re-export keeps trained probes
    when they read the same hidden states (same source file by sha256, quantization and layers); a bundle
    with trained probes from a source without a sha256 is kept as it is, since they could not be carried.
    A manifest that does not load is left for the loader to report."""
    path = Path(folder)
    if not (path / MANIFEST_FILE).is_file():
        return True
    try:
        manifest = load_bundle(path, verify=False)
    except BundleCorrupt:
        return False
    return manifest.outdated and (not manifest.probe.trained or manifest.source.sha256 is not None)


def _file_stats(path: Path, manifest: Manifest) -> dict[str, list[int]]:
    stats = {}
    for name in manifest.files:
        try:
            st = (path / name).stat()
        except FileNotFoundError as exc:
            raise BundleCorrupt(f"bundle {path} is missing {name}") from exc
        stats[name] = [st.st_size, st.st_mtime_ns]
    return stats


def _read_stamp(path: Path) -> object:
    try:
        return json.loads((path / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_stamp(path: Path, stamp: dict[str, object]) -> None:
    with contextlib.suppress(OSError):  # a read-only bundle is verified on every start instead
        (path / STAMP_FILE).write_text(json.dumps(stamp), encoding="utf-8")


def hash_files(folder: Path, names: list[str]) -> dict[str, str]:
    return {name: sha256_file(folder / name) for name in sorted(names)}


def write_manifest(folder: Path, manifest: Manifest, name: str = MANIFEST_FILE) -> None:
    """Replaces ``manifest.json`` (or ``name``) atomically (write, fsync, rename)."""
    tmp = folder / f".{name.lstrip('.')}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(manifest.to_json())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)


def commit_pending(folder: Path) -> None:
    """Makes the pending manifest (``write_manifest(folder, m, PENDING_MANIFEST)``) the bundle's manifest."""
    os.replace(folder / PENDING_MANIFEST, folder / MANIFEST_FILE)
    with contextlib.suppress(OSError):  # make the rename durable where folders can be opened
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _clear_interrupted(dest: Path) -> None:
    """Clears what a write to ``dest`` that a kill cut short left beside it: staging folders (as large as a
    bundle each, so they would fill a device's disk), and the old bundle moved aside (put back if the new
    one never took its place)."""
    _put_back(dest)
    shutil.rmtree(dest.with_name(f".{dest.name}.old"), ignore_errors=True)
    for staging in dest.parent.glob(f".{dest.name}.*.partial"):
        shutil.rmtree(staging, ignore_errors=True)


def _put_back(dest: Path) -> None:
    """Puts the previous bundle back at ``dest`` when a kill came between moving it aside and renaming the new
    one into place."""
    old = dest.with_name(f".{dest.name}.old")
    if old.is_dir() and not dest.exists():
        with contextlib.suppress(OSError):  # a read-only folder: nothing to do here
            os.replace(old, dest)


def _settle_pending(path: Path) -> None:
    """Finishes or forgets an in-place update that a crash interrupted (:func:`confroute.bundle.probe.write_probe`
    writes the new manifest as pending, then replaces the file, then commits): a pending manifest whose changed
    files are all in place becomes the manifest; otherwise the files are still the old ones and it is dropped."""
    pending = path / PENDING_MANIFEST
    if not pending.is_file():
        return
    try:
        new = Manifest.from_json(pending.read_text(encoding="utf-8"))
        old = Manifest.from_json((path / MANIFEST_FILE).read_text(encoding="utf-8"))
        changed = {name: digest for name, digest in new.files.items() if old.files.get(name) != digest}
        if all((path / name).is_file() and sha256_file(path / name) == digest for name, digest in changed.items()):
            commit_pending(path)
        else:
            pending.unlink()
    except (OSError, BundleCorrupt):  # a read-only bundle (left as it is), or a pending file that is not one
        with contextlib.suppress(OSError):
            pending.unlink()


@contextlib.contextmanager
def write_atomically(dest: Path) -> Iterator[Path]:
    """Yields an empty staging folder next to ``dest``; renames it to ``dest`` only if the block succeeds.

    A failure (or Ctrl-C) removes the staging folder: no half-written bundle is ever left at ``dest``.
    An existing ``dest`` is replaced only after the new one is complete. What a kill -9 leaves (a staging
    folder, the old bundle moved aside) is cleared by the next write, and by ``load_bundle`` where it matters
    (see :func:`_clear_interrupted`). One process writes a given ``dest`` at a time.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    _clear_interrupted(dest)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = dest.with_name(f".{dest.name}.old")
    if dest.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(staging, dest)
    shutil.rmtree(old, ignore_errors=True)


def previous_of(dest: Path) -> Path:
    """Where :func:`swap_in` keeps the bundle that ``dest`` held before: ``<dest>.previous`` beside it."""
    return dest.with_name(f"{dest.name}.previous")


def swap_in(new: Path, dest: Path) -> None:
    """Makes the complete bundle folder ``new`` the one at ``dest`` and keeps the old one at
    :func:`previous_of` (replacing the one kept before). ``new`` must be on ``dest``'s file system.

    Three renames: ``dest`` aside to ``.<name>.old`` (a kill now: ``load_bundle`` puts it back), ``new`` to
    ``dest`` (a kill now: the next swap moves ``.old`` to previous), ``.old`` to previous. Swapping in
    :func:`previous_of` ``dest`` is a rollback (and a second one rolls forward again).
    """
    old, previous = dest.with_name(f".{dest.name}.old"), previous_of(dest)
    settle_swap(dest)
    if dest.exists():
        os.replace(dest, old)
    os.replace(new, dest)
    if old.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(old, previous)
    _fsync_folder(dest.parent)


def settle_swap(dest: Path) -> None:
    """Finishes a :func:`swap_in` that a kill cut short: the old bundle put back when no new one took its
    place, or else kept as the previous one."""
    _put_back(dest)
    old = dest.with_name(f".{dest.name}.old")
    if old.is_dir():
        shutil.rmtree(previous_of(dest), ignore_errors=True)
        os.replace(old, previous_of(dest))


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # make renames durable where folders can be opened
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
