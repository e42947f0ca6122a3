from __future__ import annotations

from pathlib import Path

import pytest

from bench.readme_block import replace_block
from confroute.errors import InvalidInput


def test_the_block_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# t\nbefore\n<!-- b:start -->\nold\n<!-- b:end -->\nafter\n")
    replace_block(readme, "b", "| new |\n")
    assert readme.read_text() == "# t\nbefore\n<!-- b:start -->\n| new |\n<!-- b:end -->\nafter\n"


def test_a_missing_block_is_an_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# t\n")
    with pytest.raises(InvalidInput):
        replace_block(readme, "b", "x")
