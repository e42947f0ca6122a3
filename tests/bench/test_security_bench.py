"""``python -m bench.security --quick`` end to end on tritonserver: every attack refused, nothing crashed or
hung; and the same table with the in-process model (no Triton needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import security
from tests.harness import triton_python_or_skip


def run_quick(tmp_path: Path, *flags: str) -> tuple[int, dict[str, object]]:
    out = tmp_path / "security.json"
    code = security.main(["--quick", "--json", str(out), *flags])
    return code, json.loads(out.read_text())


def assert_all_refused(code: int, result: dict[str, object]) -> None:
    rows = result["rows"]
    assert isinstance(rows, list)
    assert code == 0, [row for row in rows if not row["refused"]]
    assert result["attacks_refused"] == result["attacks_tried"] == len(rows) >= 45
    assert result["crashes"] == result["hangs"] == 0
    assert result["still_serving"]
    assert isinstance(result["auth_added_p50_us"], float)


@pytest.mark.slow
def test_every_attack_is_refused_on_tritonserver(tmp_path: Path) -> None:
    code, result = run_quick(tmp_path, "--backend-python", str(triton_python_or_skip()))
    assert result["model"] == "tritonserver (echo)"
    assert_all_refused(code, result)


@pytest.mark.slow
def test_every_attack_is_refused_with_the_in_process_model(tmp_path: Path) -> None:
    code, result = run_quick(tmp_path, "--model", "in-process")
    assert result["model"] == "in-process echo"
    assert_all_refused(code, result)
