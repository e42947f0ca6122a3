"""The device's id is stable and unique, never the hostname; its credentials are kept 0600."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from confroute.errors import InvalidInput
from edge_agent.identity import read_secret, stable_device_id, write_secret


def machine_id(folder: Path, value: str) -> Path:
    path = folder / "machine-id"
    path.write_text(value + "\n")
    return path


def test_the_id_comes_from_the_machine_id_hashed_and_differs_between_machines(tmp_path: Path) -> None:
    one = stable_device_id(tmp_path, machine_id(tmp_path, "0123456789abcdef0123456789abcdef"))
    again = stable_device_id(tmp_path, tmp_path / "machine-id")
    other = stable_device_id(tmp_path, machine_id(tmp_path, "f" * 32))

    assert one == again != other
    assert one.startswith("m-") and "0123456789abcdef" not in one
    assert socket.gethostname() not in (one, other)


@pytest.mark.parametrize("content", [None, "", "uninitialized", "not-hex-" * 4])
def test_without_a_usable_machine_id_a_uuid_is_kept_beside_the_outbox(tmp_path: Path, content: str | None) -> None:
    source = tmp_path / "missing" if content is None else machine_id(tmp_path, content)
    state = tmp_path / "state"

    first = stable_device_id(state, source)

    assert first.startswith("u-") and stable_device_id(state, source) == first
    assert (state / "device-id").read_text().strip() == first
    assert stable_device_id(tmp_path / "other-device", source) != first


def test_the_agent_config_never_defaults_to_the_hostname(tmp_path: Path) -> None:
    from edge_agent.cli import parse_args

    _, config, _ = parse_args(["serve", "--state-dir", str(tmp_path)], {})

    assert config.device_id != socket.gethostname()
    assert config.device_id == stable_device_id(tmp_path)


def test_a_credential_is_written_0600_and_one_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    write_secret(path, "crt_secret")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_secret(path, "token_file") == "crt_secret"
    path.chmod(0o644)
    with pytest.raises(InvalidInput, match="readable by others"):
        read_secret(path, "token_file")


def test_the_token_file_sets_the_cloud_credential(tmp_path: Path) -> None:
    from edge_agent.cli import parse_args

    write_secret(tmp_path / "token", "crt_from_file")
    _, config, _ = parse_args(["serve", "--cloud", "127.0.0.1:1", "--token-file", str(tmp_path / "token"),
                               "--device-id", "dev-1"], {})

    assert config.cloud is not None and config.cloud.token == "crt_from_file"
    assert "crt_from_file" not in repr(config)


def test_the_api_key_comes_from_the_environment_or_a_private_file_and_stays_out_of_repr(tmp_path: Path) -> None:
    from edge_agent.cli import parse_args

    _, from_env, _ = parse_args(["serve", "--device-id", "d"], {"CONFROUTE_EDGE_API_KEY": "k-env"})
    write_secret(tmp_path / "key", "k-file")
    _, from_file, _ = parse_args(["serve", "--device-id", "d", "--api-key-file", str(tmp_path / "key")], {})

    assert (from_env.api_key, from_file.api_key) == ("k-env", "k-file")
    assert "k-env" not in repr(from_env) and "k-file" not in repr(from_file)
