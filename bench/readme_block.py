"""Benchmarks regenerate their README sections: text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from confroute.errors import InvalidInput


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
