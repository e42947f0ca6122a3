"""``python -m bench.security --quick`` end to end: every attack refused, nothing crashed or hung."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import security


@pytest.mark.slow
def test_every_attack_is_refused_and_the_stack_keeps_serving(tmp_path: Path) -> None:
    out = tmp_path / "security.json"

    code = security.main(["--quick", "--json", str(out)])

    result = json.loads(out.read_text())
    assert code == 0, [row for row in result["rows"] if not row["refused"]]
    assert result["attacks_refused"] == result["attacks_tried"] >= 35
    assert result["crashes"] == result["hangs"] == 0
    assert result["still_serving"]
