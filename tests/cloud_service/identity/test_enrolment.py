"""``cloud-service ca`` and ``devices``: credentials issued once, stored only as hashes and serials."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import redis

from cloud_service import cli
from cloud_service.identity.ca import identity_of
from tests.cloud_service.identity.stack import Fleet


def all_redis_bytes(url: str) -> bytes:
    client = redis.Redis.from_url(url)
    try:
        dump = b""
        for key in client.scan_iter():
            kind = bytes(client.type(key))  # type: ignore[arg-type]
            value: object = {
                b"string": client.get, b"set": client.smembers, b"zset": lambda k: client.zrange(k, 0, -1),
                b"hash": client.hgetall,
            }[kind](key)
            dump += key + repr(value).encode()
        return dump
    finally:
        client.close()


def test_a_token_is_shown_once_and_redis_holds_only_its_keyed_hash(fleet: Fleet) -> None:
    token = fleet.enroll_token("dev-a")

    assert token.startswith("crt_") and len(token) >= 4 + 43
    assert token.encode() not in all_redis_bytes(fleet.redis_url)
    assert token not in fleet.cli("devices", "list")


def test_list_shows_each_principal_with_its_cohort_and_state(fleet: Fleet) -> None:
    fleet.enroll_token("dev-a", "beta")
    fleet.enroll_token("ops-1", "", "--operator", "--role", "read-only")
    fleet.cli("devices", "revoke", "dev-a")

    lines = fleet.cli("devices", "list").splitlines()

    assert lines[0].startswith("dev-a  device  cohort=beta  revoked")
    assert lines[1].startswith("ops-1  operator  role=read-only  active")


def test_a_device_certificate_names_the_device_in_its_san_and_its_key_is_private(fleet: Fleet) -> None:
    cert, _ = fleet.enroll_cert("dev-b")

    named = identity_of(cert)
    assert named is not None and named.device_id == "dev-b"
    key = fleet.folder / "devices" / "dev-b.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((fleet.ca_dir / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((fleet.ca_dir / "identity.secret").stat().st_mode) == 0o600


def test_rotation_changes_the_stored_serial(fleet: Fleet) -> None:
    first, _ = fleet.enroll_cert("dev-c")
    fleet.cli("devices", "rotate", "dev-c", "--credential", "cert", "--out", str(fleet.folder / "rotated"))
    second = (fleet.folder / "rotated" / "dev-c.pem").read_bytes()

    one, two = identity_of(first), identity_of(second)
    assert one is not None and two is not None and one.serial != two.serial


def test_enrolling_an_id_twice_or_a_bad_id_is_refused_with_status_2(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.enroll_token("dev-a")
    settings = ["--redis-url", fleet.redis_url, "--identity-secret", str(fleet.ca_dir / "identity.secret")]

    assert cli.main(["devices", "enroll", "dev-a", *settings]) == 2
    assert cli.main(["devices", "enroll", "raspberry pi", *settings]) == 2
    assert "already enrolled" in capsys.readouterr().err


def test_a_fleet_ca_is_never_overwritten(fleet: Fleet, tmp_path: Path) -> None:
    assert cli.main(["ca", "init", "--ca-dir", str(fleet.ca_dir)]) == 2
