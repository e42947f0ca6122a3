from __future__ import annotations

from pathlib import Path

import pytest

from bench.readme_block import DOCS, PAGES, links_from, page_of, replace_block
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


def test_each_benchmark_block_lives_in_exactly_one_docs_page() -> None:
    for name in PAGES:
        text = page_of(name).read_text("utf-8")
        assert text.count(f"<!-- {name}:start -->") == 1 and text.count(f"<!-- {name}:end -->") == 1


def test_an_unknown_block_has_no_page() -> None:
    with pytest.raises(InvalidInput):
        page_of("bench.nothing")


def test_images_are_linked_relative_to_the_page_and_outside_files_left_out(tmp_path: Path) -> None:
    page = page_of("bench.uncertainty")
    images = [DOCS / "img" / "a.png", tmp_path / "b.png"]
    assert links_from(page, images) == ["img/a.png"]
