"""``cloud-service policy show`` and ``policy diff`` on a real Redis policy store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloud_service.cli import main

FLAGS = ("--edge-model-id", "smollm2", "--edge-model-version", "b1", "--cohort", "beta", "--mode", "pre")
KEY = ("--edge-model-version", "b1", "--cohort", "beta")


def test_show_names_the_control_and_summarizes_it(redis_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    redis = ["--redis-url", redis_server.url]
    assert main(["policy", "show", *redis, *KEY]) == 1  # nothing published yet
    assert main(["policy", "set", *redis, *FLAGS, "--policy-version", "v1", "--pre", "0.4"]) == 0
    capsys.readouterr()

    assert main(["policy", "show", *redis, *KEY]) == 0
    screen = capsys.readouterr().out
    assert main(["policy", "show", *redis, *KEY, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)

    assert screen.startswith("edge model b1, cohort beta: control v1")
    assert "thresholds.pre" in screen and "0.4" in screen
    assert document["control"] == "v1" and document["canary"] is None and not document["pinned"]
    assert document["policies"]["v1"]["thresholds.pre"] == pytest.approx(0.4)
    assert document["policies"]["v1"]["mode"] == "pre"


def test_diff_lists_what_changed_between_two_versions(redis_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    redis = ["--redis-url", redis_server.url]
    assert main(["policy", "set", *redis, *FLAGS, "--policy-version", "v1", "--pre", "0.4"]) == 0
    assert main(["policy", "set", *redis, *FLAGS, "--policy-version", "v2", "--pre", "0.3"]) == 0
    capsys.readouterr()

    assert main(["policy", "diff", *redis, *KEY, "v1", "v2", "--json"]) == 0
    changes = {change["field"]: (change["old"], change["new"])
               for change in json.loads(capsys.readouterr().out)}
    assert main(["policy", "diff", *redis, *KEY, "v1", "v1"]) == 0
    same = capsys.readouterr().out
    assert main(["policy", "diff", *redis, *KEY, "v9"]) == 2

    assert changes["thresholds.pre"] == pytest.approx((0.4, 0.3))
    assert changes["version"] == ("v1", "v2")
    assert "thresholds.post" not in changes
    assert same.strip() == "v1 and v1 route alike"
    assert "no stored policy v9" in capsys.readouterr().err
