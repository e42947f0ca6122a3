"""Whole-bundle delivery on loopback: a real ``BundleService`` (grpc.aio on port 0, its releases in a real
``redis-server``, its bytes in a bundle folder) and the device's updater over a real channel, with tiny random
bundles. Covered: a full download and the swap that keeps the previous bundle, a download cut off after N
chunks and resumed by size, a tampered chunk, file or signature refused with the old bundle kept, a short disk
refused before anything is fetched, rollback (and forward again), and both command lines."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import redis

from cloud_service.bundles.library import BundleLibrary
from cloud_service.bundles.pointers import BundleCatalog, ReleasePointers
from cloud_service.bundles.prune import plan_prune, prune_bundles
from cloud_service.bundles.publish import publish_bundle
from cloud_service.cli import main as cloud_main
from cloud_service.config import ServiceConfig
from cloud_service.identity.service import open_identity
from cloud_service.metrics import create_metrics
from cloud_service.redis_client import connect
from cloud_service.server.app import Dependencies, build_server
from cloud_service.store.schema import BundleKeys
from confroute.backoff import Backoff
from confroute.bundle.probe import write_probe
from confroute.bundle.store import load_bundle, previous_of
from confroute.contract.bundle_release import BundleRelease
from confroute.errors import (
    BundleCorrupt,
    BundleNotFound,
    InsufficientDisk,
    Overloaded,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.tiny import tiny_source
from confroute.signing import SigningKey, TrustedKeys, generate_key_pair
from confroute.signing.bundle_signature import ReleaseVerifier
from edge_agent.bundles import BundleUpdater, rollback
from edge_agent.bundles.download import Staging
from edge_agent.bundles.source import GrpcBundleSource
from edge_agent.cli import main as edge_main
from tests.cloud_service.identity.stack import FAST, Fleet, bearer, make_fleet
from tests.cloud_service.redis_server import RedisServer, RedisServerMissing
from tests.harness import LoopThread

COHORT = "canary"
CHUNK = 4096  # the service's smallest chunk: the tiny bundle's ~790 KB come in ~190 chunks


@dataclasses.dataclass
class Cloud:
    """The service, its catalog and the key it signs with."""

    loop: LoopThread
    redis: RedisServer
    target: str
    catalog: BundleCatalog
    key: SigningKey
    public_key: Path
    bundle_dir: Path

    def publish(self, folder: Path, cohort: str = COHORT) -> BundleRelease:
        return self.loop.run(publish_bundle(folder, cohort, self.catalog.library, self.catalog.pointers, self.key))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two tiny bundles of one model: ``a``, and ``b`` whose probe was retrained (another content version)."""
    root = tmp_path_factory.mktemp("bundles")
    export_bundle(tiny_source("llama"), root / "a", ExportOptions(), lambda _m: None)
    shutil.copytree(root / "a", root / "b")
    manifest = load_bundle(root / "b")
    write_probe(root / "b", "tbg", np.full(manifest.probe.feature_dim, 0.01), 0.5, {"label": "test"})
    return root / "a", root / "b"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
    except RedisServerMissing as exc:
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture
def cloud(tmp_path: Path, redis_server: RedisServer) -> Iterator[Cloud]:
    yield from _serve(tmp_path, redis_server, {})


@pytest.fixture
def fleet(tmp_path: Path, redis_server: RedisServer) -> Fleet:
    return make_fleet(tmp_path / "fleet", redis_server.url)


@pytest.fixture
def secure_cloud(tmp_path: Path, redis_server: RedisServer, fleet: Fleet) -> Iterator[Cloud]:
    """The service authenticating every call with bearer tokens (docs/identity.md)."""
    yield from _serve(tmp_path, redis_server, {"identity_secret": str(fleet.ca_dir / "identity.secret")})


def _serve(tmp_path: Path, server: RedisServer, overrides: dict[str, Any]) -> Iterator[Cloud]:
    loop = LoopThread("bundle-service")
    stack = AsyncExitStack()
    key = generate_key_pair(tmp_path / "keys" / "signing")
    bundle_dir = tmp_path / "cloud-bundles"

    async def start() -> tuple[BundleCatalog, int]:
        client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=5.0)
        stack.push_async_callback(client.aclose)
        catalog = BundleCatalog(ReleasePointers(client), BundleLibrary(bundle_dir))
        config = ServiceConfig(listen="127.0.0.1:0", redis_url=server.url, bundle_dir=str(bundle_dir), **overrides)
        identity = await stack.enter_async_context(open_identity(config, FAST))
        unused: Any = object()  # the escalation and outcome services are registered but not called here
        deps = Dependencies(unused, unused, unused, create_metrics(), identity, bundles=catalog)
        running = build_server(config, deps)
        await running.start(_never_ready, 60.0)
        stack.push_async_callback(running.stop, 0.1)
        return catalog, running.port

    catalog, port = loop.run(start())
    try:
        yield Cloud(loop, server, f"127.0.0.1:{port}", catalog, key, tmp_path / "keys" / "signing.pub", bundle_dir)
    finally:
        loop.run(stack.aclose())
        loop.close()


async def _never_ready() -> bool:
    return False


class Device:
    """One device's updater over a real channel; ``source`` may be wrapped to cut or tamper the stream."""

    def __init__(self, cloud: Cloud, root: Path, cohort: str = COHORT, device_id: str = "device-1",
                 token: str = "", claimed_cohort: str | None = None) -> None:
        self.bundle = root / "bundle"
        self.state_dir = root / "state"
        self.cohort = cohort
        self.channel = grpc.insecure_channel(cloud.target)
        metadata = tuple(bearer(token)) if token else ()
        self.source: Any = GrpcBundleSource(self.channel, metadata, device_id, claimed_cohort or cohort,
                                            chunk_bytes=CHUNK)
        self.check = ReleaseVerifier(TrustedKeys.of([cloud.key.private_key.public_key()]))
        self.free_space = lambda _path: 1 << 40
        self.retries = 0  # a cut ends the run, as a kill would; the next run resumes

    def update(self) -> Any:
        return BundleUpdater(self.bundle, self.state_dir, self.source, self.check, self.cohort,
                             free_space=self.free_space, retries=self.retries, backoff=Backoff(0.001, 0.001)).update()

    @property
    def version(self) -> str:
        return load_bundle(self.bundle).version

    @property
    def staged_bytes(self) -> int:
        staging = self.state_dir / "bundle-download"
        return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) if staging.exists() else 0


@pytest.fixture
def device(cloud: Cloud, tmp_path: Path) -> Iterator[Device]:
    made = Device(cloud, tmp_path / "device")
    yield made
    made.channel.close()


class CutAfter:
    """A source whose streams end with UNAVAILABLE after ``chunks`` chunks in all (a dropped connection), from
    then on or (``once``) that one time."""

    def __init__(self, inner: Any, chunks: int, *, once: bool = False) -> None:
        self.inner, self.left, self.once, self.fetched = inner, chunks, once, 0

    def release(self) -> BundleRelease:
        return self.inner.release()  # type: ignore[no-any-return]

    def read(self, release: BundleRelease, name: str, offset: int) -> Iterator[bytes]:
        for chunk in self.inner.read(release, name, offset):
            if self.left == 0:
                self.left = -1 if self.once else 0
                raise Unavailable("the connection dropped")
            self.left -= 1
            self.fetched += len(chunk)
            yield chunk


class Counting(CutAfter):
    def __init__(self, inner: Any) -> None:
        super().__init__(inner, -1)


class FlipByte(CutAfter):
    """A source that flips one byte of the 3rd chunk it passes on."""

    def read(self, release: BundleRelease, name: str, offset: int) -> Iterator[bytes]:
        for chunk in self.inner.read(release, name, offset):
            self.fetched += 1
            yield bytes([chunk[0] ^ 0xFF]) + chunk[1:] if self.fetched == 3 else chunk


def test_a_device_downloads_its_cohorts_bundle_and_keeps_the_previous_one(
        cloud: Cloud, device: Device, bundles: tuple[Path, Path]) -> None:
    a, b = bundles
    first = cloud.publish(a)
    assert device.update().as_dict() == {"outcome": "installed", "bundle_version": first.bundle_version,
                                         "previous_version": None, "downloaded_bytes": first.total_bytes}
    assert device.version == first.bundle_version
    second = cloud.publish(b)
    result = device.update()
    assert (result.outcome, result.bundle_version, result.previous_version) == (
        "installed", second.bundle_version, first.bundle_version)
    assert device.version == second.bundle_version
    assert load_bundle(previous_of(device.bundle)).version == first.bundle_version
    assert device.update().outcome == "current"
    assert not (device.state_dir / "bundle-download").exists() or device.staged_bytes == 0


def test_a_download_cut_off_after_n_chunks_resumes_where_it_stopped(
        cloud: Cloud, device: Device, bundles: tuple[Path, Path]) -> None:
    a, b = bundles
    cloud.publish(a)
    device.update()
    release = cloud.publish(b)
    grpc_source = device.source
    device.source = CutAfter(grpc_source, chunks=60)
    with pytest.raises(Unavailable):
        device.update()
    kept = device.staged_bytes
    assert kept == device.source.fetched  # every chunk received before the cut is on disk
    assert 0 < kept < release.total_bytes
    assert device.version != release.bundle_version  # the old bundle is untouched until the swap
    device.source = Counting(grpc_source)
    result = device.update()
    assert result.outcome == "installed" and device.version == release.bundle_version
    assert device.source.fetched == release.total_bytes - kept == result.downloaded_bytes


def test_a_device_killed_mid_download_resumes_by_size_and_installs(
        cloud: Cloud, device: Device, bundles: tuple[Path, Path]) -> None:
    a, b = bundles
    old = cloud.publish(a)
    device.update()
    release = cloud.publish(b)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "shared"), str(root)])}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.bundle_slow_device", cloud.target, str(cloud.public_key), str(device.bundle),
         str(device.state_dir), COHORT], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60.0
        while device.staged_bytes < release.total_bytes // 3:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the device never got a third of the way"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10.0)
        child.communicate()
    kept = device.staged_bytes
    assert 0 < kept < release.total_bytes and device.version == old.bundle_version
    device.source = Counting(device.source)
    result = device.update()
    assert result.outcome == "installed" and device.version == release.bundle_version
    assert device.source.fetched == release.total_bytes - kept


def test_one_update_runs_at_a_time(cloud: Cloud, device: Device, bundles: tuple[Path, Path]) -> None:
    cloud.publish(bundles[0])
    staging = Staging(device.state_dir / "bundle-download")
    with staging.exclusive(), pytest.raises(Unavailable, match="another bundle update is running"):
        device.update()
    assert device.update().outcome == "installed"


def test_a_dropped_stream_is_resumed_within_the_same_run(
        cloud: Cloud, device: Device, bundles: tuple[Path, Path]) -> None:
    a, _ = bundles
    release = cloud.publish(a)
    device.retries = 1
    device.source = CutAfter(device.source, chunks=100, once=True)
    result = device.update()
    assert result.outcome == "installed" and device.version == release.bundle_version
    assert device.source.fetched == release.total_bytes  # nothing fetched twice


def test_a_tampered_chunk_is_refused_and_the_old_bundle_kept(
        cloud: Cloud, device: Device, bundles: tuple[Path, Path]) -> None:
    a, b = bundles
    old = cloud.publish(a)
    device.update()
    cloud.publish(b)
    device.source = FlipByte(device.source, chunks=-1)
    with pytest.raises(BundleCorrupt, match="does not match the sha256"):
        device.update()
    assert device.version == old.bundle_version


def test_a_file_changed_on_the_service_is_refused(cloud: Cloud, device: Device, bundles: tuple[Path, Path]) -> None:
    a, b = bundles
    old = cloud.publish(a)
    device.update()
    new = cloud.publish(b)
    data = cloud.bundle_dir / new.bundle_version / "model.onnx.data"
    data.write_bytes(b"\0" * data.stat().st_size)
    with pytest.raises(BundleCorrupt):
        device.update()
    assert device.version == old.bundle_version


@pytest.mark.parametrize("tamper", ["signature", "sha256", "unsigned"])
def test_a_release_whose_signature_does_not_verify_is_refused_before_any_download(
        cloud: Cloud, device: Device, bundles: tuple[Path, Path], tamper: str) -> None:
    a, b = bundles
    old = cloud.publish(a)
    device.update()
    release = cloud.publish(b)
    if tamper == "signature":
        forged = dataclasses.replace(release, signature=bytes(64))
    elif tamper == "sha256":
        files = (dataclasses.replace(release.files[0], sha256="0" * 64), *release.files[1:])
        forged = dataclasses.replace(release, files=files)
    else:
        forged = dataclasses.replace(release, signature=b"")
    redis.Redis.from_url(cloud.redis.url).hset(BundleKeys().releases, COHORT, forged.to_json())
    with pytest.raises(BundleCorrupt, match=r"unsigned|does not verify"):
        device.update()
    assert device.version == old.bundle_version and device.staged_bytes == 0


def test_a_short_disk_is_refused_before_anything_is_fetched(
        cloud: Cloud, device: Device, bundles: tuple[Path, Path]) -> None:
    a, _ = bundles
    cloud.publish(a)
    device.source = Counting(device.source)
    device.free_space = lambda _path: 64 << 20  # not the bundle plus the 64 MB kept free
    with pytest.raises(InsufficientDisk, match="nothing was downloaded") as refused:
        device.update()
    assert refused.value.free_bytes == 64 << 20 and refused.value.needed_bytes > refused.value.free_bytes
    assert device.source.fetched == 0 and not device.bundle.exists()


def test_rollback_brings_the_previous_bundle_back_and_a_second_one_rolls_forward(
        cloud: Cloud, device: Device, bundles: tuple[Path, Path]) -> None:
    a, b = bundles
    first = cloud.publish(a)
    with pytest.raises(BundleNotFound):
        rollback(device.bundle, device.state_dir)
    device.update()
    second = cloud.publish(b)
    device.update()
    back = rollback(device.bundle, device.state_dir)
    assert (back.bundle_version, back.previous_version) == (first.bundle_version, second.bundle_version)
    assert device.version == first.bundle_version
    rollback(device.bundle, device.state_dir)
    assert device.version == second.bundle_version


def test_the_service_serves_only_the_current_release_of_the_asked_cohort(
        cloud: Cloud, device: Device, bundles: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = bundles
    old = cloud.publish(a)
    cloud.publish(b)
    with pytest.raises(Unavailable, match="NOT_FOUND"):
        list(device.source.read(old, "manifest.json", 0))
    current = device.source.release()
    with pytest.raises(Unavailable, match="NOT_FOUND"):
        list(device.source.read(current, "../../etc/passwd", 0))
    other = Device(cloud, tmp_path / "other", cohort="elsewhere")
    try:
        with pytest.raises(Unavailable, match="no bundle published for cohort 'elsewhere'"):
            other.update()
    finally:
        other.channel.close()


def test_the_command_lines_publish_list_update_and_roll_back(
        cloud: Cloud, bundles: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = bundles
    key_file = tmp_path / "keys" / "signing.key"
    common = ["--redis-url", cloud.redis.url, "--bundle-dir", str(cloud.bundle_dir)]
    assert cloud_main(["bundle", "publish", str(a), "--cohort", COHORT, "--policy-signing-key", str(key_file),
                       *common]) == 0
    published = json.loads(capsys.readouterr().out)
    assert cloud_main(["bundle", "list", "--json", *common]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["cohorts"][COHORT]["bundle_version"] == published["bundle_version"]
    assert listed["held"] == [published["bundle_version"]]
    device = ["--cloud", cloud.target, "--policy-key", str(cloud.public_key), "--cohort", COHORT,
              "--bundle", str(tmp_path / "edge" / "bundle"), "--state-dir", str(tmp_path / "edge" / "state"),
              "--device-id", "device-9"]
    assert edge_main(["bundle", "update", *device]) == 0
    assert json.loads(capsys.readouterr().out)["bundle_version"] == published["bundle_version"]
    cloud.publish(b)
    assert edge_main(["bundle", "update", *device]) == 0
    capsys.readouterr()
    assert edge_main(["bundle", "rollback", *device]) == 0
    assert json.loads(capsys.readouterr().out)["bundle_version"] == published["bundle_version"]
    assert edge_main(["bundle", "status", *device]) == 0
    assert json.loads(capsys.readouterr().out)["bundle_version"] == published["bundle_version"]
    assert edge_main(["bundle", "update", *device[2:]]) == 2  # no --cloud: refused
    assert "needs --cloud" in capsys.readouterr().err


def test_a_device_gets_at_most_two_file_streams_at_once(cloud: Cloud, bundles: tuple[Path, Path]) -> None:
    release = cloud.publish(bundles[0])
    largest = max(release.files, key=lambda f: f.size).name
    # No BDP probing: the flow-control window stays at 64 KiB, so an unread stream stays open on the service.
    channel = grpc.insecure_channel(cloud.target, options=[("grpc.http2.bdp_probe", 0)])
    try:
        source, other = (GrpcBundleSource(channel, (), device, COHORT, chunk_bytes=CHUNK)
                         for device in ("device-1", "device-2"))
        streams: list[Any] = [source.read(release, largest, 0) for _ in range(3)]  # generators
        assert [len(next(stream)) for stream in streams[:2]] == [CHUNK, CHUNK]
        with pytest.raises(Overloaded, match="device 'device-1' already has 2 bundle file streams open"):
            next(streams[2])
        assert len(next(other.read(release, largest, 0))) == CHUNK  # another device is not held back
        streams[0].close()  # a stream ended frees its slot (once the service sees the cancellation)
        deadline = time.monotonic() + 5
        while True:
            try:
                assert len(next(source.read(release, largest, 0))) == CHUNK
                break
            except Overloaded:
                assert time.monotonic() < deadline
                time.sleep(0.01)
    finally:
        channel.close()


def _third_bundle(a: Path, root: Path) -> Path:
    """Another content version of bundle ``a`` (its probe retrained again)."""
    shutil.copytree(a, root / "c")
    write_probe(root / "c", "tbg", np.full(load_bundle(a).probe.feature_dim, 0.02), 0.5, {"label": "c"})
    return root / "c"


def _age(cloud: Cloud, ages_s: dict[str, float]) -> None:
    """Backdates each version's folder (its publish time) by the seconds given."""
    for version, age in ages_s.items():
        when = time.time() - age
        os.utime(cloud.bundle_dir / version, (when, when))


def test_prune_deletes_unreferenced_versions_but_the_newest_kept_and_never_a_live_one(
        cloud: Cloud, device: Device, bundles: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = bundles
    old = cloud.publish(a).bundle_version
    live = cloud.publish(b).bundle_version  # canary moves on: a is unreferenced
    newer = cloud.publish(_third_bundle(a, tmp_path), cohort="other").bundle_version
    cloud.publish(b, cohort="other")  # other moves on too: c is unreferenced, and newer than a
    _age(cloud, {old: 7200, live: 7200, newer: 3600})
    common = ["--redis-url", cloud.redis.url, "--bundle-dir", str(cloud.bundle_dir)]
    assert cloud_main(["bundle", "prune", "--keep", "1", "--dry-run", *common]) == 0
    assert json.loads(capsys.readouterr().out) == {"live": [live], "kept": [newer], "deleted": [old],
                                                   "dry_run": True}
    assert cloud.catalog.library.versions() == sorted([old, live, newer])
    assert cloud_main(["bundle", "prune", "--keep", "1", *common]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == [old]
    assert cloud.catalog.library.versions() == sorted([live, newer])
    plan = cloud.loop.run(prune_bundles(cloud.catalog.library, cloud.catalog.pointers, 0))
    assert (plan.live, plan.kept, plan.deleted) == ((live,), (), (newer,))
    assert cloud.catalog.library.versions() == [live]
    assert not [p for p in cloud.bundle_dir.iterdir() if p.name != live]  # nothing left aside
    assert device.update().bundle_version == live  # the live bundle is whole and served
    cloud.publish(a)  # a again (copied anew), then the cohort back to b: a is unreferenced but just published
    cloud.publish(b)
    assert cloud.loop.run(prune_bundles(cloud.catalog.library, cloud.catalog.pointers, 0)).kept == (old,)
    assert cloud_main(["bundle", "prune", "--keep", "-1", *common]) == 2
    assert "--keep must be 0 or more" in capsys.readouterr().err


def test_a_prune_plan_orders_by_publish_time_and_spares_the_grace_period() -> None:
    added = {"v1": 100.0, "v2": 300.0, "v3": 200.0, "live": 50.0}
    plan = plan_prune(added, {"live", "gone"}, 1, now=10_000.0)
    assert (plan.live, plan.kept, plan.deleted) == (("live",), ("v2",), ("v1", "v3"))
    assert plan_prune(added, {"live"}, 0, now=400.0, grace_s=250.0).deleted == ("v1",)


def test_with_authentication_a_device_reads_its_own_cohorts_bundle_only(
        secure_cloud: Cloud, fleet: Fleet, bundles: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = bundles
    release = secure_cloud.publish(a)
    secure_cloud.publish(a, cohort="other")
    token = fleet.enroll_token("dev-a", COHORT)
    devices = {
        "own": Device(secure_cloud, tmp_path / "own", device_id="dev-a", token=token),
        "claims another cohort": Device(secure_cloud, tmp_path / "claims", device_id="dev-a", token=token,
                                        cohort="other"),
        "claims another device": Device(secure_cloud, tmp_path / "as", device_id="dev-z", token=token),
        "no token": Device(secure_cloud, tmp_path / "none", device_id="dev-a"),
    }
    try:
        assert devices["own"].update().bundle_version == release.bundle_version
        for name in ("claims another cohort", "claims another device"):
            with pytest.raises(PermissionDenied):
                devices[name].update()
        with pytest.raises(PermissionDenied):  # a file of another cohort's release, as itself
            list(devices["claims another cohort"].source.read(release, "manifest.json", 0))
        with pytest.raises(Unauthenticated):
            devices["no token"].update()
    finally:
        for made in devices.values():
            made.channel.close()
