"""The operator's rollout commands: keygen, signed set, pin / unpin, rollback and history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud_service.cli import main
from confroute.contract import Policy
from confroute.signing import PolicyVerifier, load_trusted_keys
from confroute.v1 import fleet_pb2

FLAGS = ("--edge-model-id", "smollm2", "--edge-model-version", "b1", "--cohort", "beta", "--mode", "pre")
KEY = ("--edge-model-version", "b1", "--cohort", "beta")


def test_keygen_then_set_publishes_a_policy_devices_can_verify(
    redis_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "keygen", str(tmp_path / "cloud")]) == 0
    assert "ed25519:" in capsys.readouterr().out
    redis = ["--redis-url", redis_server.url, "--policy-signing-key", str(tmp_path / "cloud.key")]

    assert main(["policy", "set", *redis, *FLAGS, "--policy-version", "v1"]) == 0

    from google.protobuf import json_format

    shown = json_format.Parse(capsys.readouterr().out, fleet_pb2.Policy())
    PolicyVerifier(load_trusted_keys([tmp_path / "cloud.pub"]))(Policy.from_pb(shown))


def test_pin_unpin_rollback_and_history(redis_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    redis = ["--redis-url", redis_server.url]
    assert main(["policy", "set", *redis, *FLAGS, "--policy-version", "v1"]) == 0
    assert main(["policy", "set", *redis, *FLAGS, "--policy-version", "v2", "--pre", "0.3"]) == 0
    capsys.readouterr()

    assert main(["policy", "pin", *redis, *KEY, "--policy-version", "v1", "--reason", "incident 7"]) == 0
    assert capsys.readouterr().out.strip() == "v1+pin.3"
    assert main(["policy", "set", *redis, *FLAGS, "--policy-version", "v3"]) == 2  # pinned: refused
    assert "unpin it first" in capsys.readouterr().err
    assert main(["policy", "unpin", *redis, *KEY]) == 0
    assert main(["policy", "rollback", *redis, *KEY]) == 0
    assert capsys.readouterr().out.strip() == "v2+rollback.5"
    assert main(["policy", "promote", *redis, *KEY]) == 2  # no canary
    capsys.readouterr()

    assert main(["policy", "history", *redis, *KEY, "--count", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["rollback", "unpin", "pin", "publish", "publish"]
    assert "pinned" in lines[2] and "# incident 7; content of v1" in lines[2]
    assert main(["policy", "history", *redis, *KEY, "--count", "10", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["action"] for e in entries] == ["rollback", "unpin", "pin", "publish", "publish"]
    assert entries[2]["pinned"] is True and entries[2]["control"].startswith("v1")


def test_get_shows_json(redis_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    redis = ["--redis-url", redis_server.url]
    main(["policy", "set", *redis, *FLAGS, "--policy-version", "v1"])
    capsys.readouterr()
    assert main(["policy", "get", *redis, *KEY]) == 0
    assert json.loads(capsys.readouterr().out)["policyVersion"] == "v1"
