"""Benchmarks regenerate their README sections: text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``."""

from __future__ import annotations

from pathlib import Path

from confroute.errors import InvalidInput


def replace_block(readme: Path, name: str, markdown: str) -> None:
    """Replaces the block ``name`` in ``readme`` with ``markdown`` (the markers stay; atomic write)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = readme.read_text("utf-8")
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise InvalidInput(f"{readme} needs exactly one {start} ... {end} block", field="readme")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(f"{head}{start}\n{markdown.strip()}\n{end}{tail}", "utf-8")
    tmp.replace(readme)
