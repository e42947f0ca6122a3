from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli import main


def test_ask_streams_an_answer_then_one_line_of_routing_metadata(tiny_bundles: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(tmp_path)]
    assert main(["ask", "hello there", "--bundle", str(tiny_bundles["llama"]), "--max-tokens", "5", *state]) == 0
    meta = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert meta["side"] == "edge"
    assert meta["model"] == "tiny-random-llama"
    assert meta["policy_version"] == "builtin"
    assert meta["ttft_ms"] is None or meta["ttft_ms"] > 0
    assert (tmp_path / "outbox.db").exists()  # the outcome was recorded


def test_asking_for_a_device_this_build_cannot_use_fails_clearly(tiny_bundles: dict[str, Path], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "hi", "--bundle", str(tiny_bundles["llama"]), "--device", "tensorrt",
                 "--state-dir", str(tmp_path)]) == 2
    assert "lacks TensorrtExecutionProvider" in capsys.readouterr().err


def test_a_missing_bundle_says_how_to_build_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "hi", "--bundle", str(tmp_path), "--state-dir", str(tmp_path)]) == 2
    assert "confroute-export" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from confroute import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"edge-agent {__version__}"
