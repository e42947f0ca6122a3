"""Benchmarks regenerate their sections of the docs pages: text between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``, in the page ``page_of(NAME)`` names."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from confroute.errors import InvalidInput

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: Where each benchmark's block lives (``bench.fleet``'s is written by hand from the benchmark's output).
PAGES = {
    "bench.routing_replay": "routing-quality.md",
    "bench.uncertainty": "routing-quality.md",
    "bench.fleet": "calibration-and-fleet.md",
}


def page_of(name: str) -> Path:
    """The docs page that holds the block ``name``."""
    if name not in PAGES:
        raise InvalidInput(f"no docs page holds the block {name!r}; known: {sorted(PAGES)}", field="name")
    return DOCS / PAGES[name]


def links_from(page: Path, files: Iterable[Path]) -> list[str]:
    """Relative links from ``page`` to those ``files`` that lie in the repository (others are left out)."""
    repo = DOCS.parent
    inside = [f.resolve() for f in files if f.resolve().is_relative_to(repo)]
    return [Path(os.path.relpath(f, page.resolve().parent)).as_posix() for f in inside]


def measured_on(report: Mapping[str, Any]) -> str:
    """The sentence that names the CPU a block's figures came from (a benchmark JSON's ``cpu_*`` keys)."""
    if "cpu_model" not in report:
        return "CPU: not recorded (a run from before benchmarks named it)."
    return f"CPU: {report['cpu_model']} ({report['cpu_isa']})."


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
