"""An arithmetic difficulty ladder: addition, subtraction and multiplication of 1- to 4-digit numbers.

Easy for a small model at the bottom (3 + 5), hopeless at the top (4821 times 7395): a question set whose
difficulty is known by construction, answered by generation and read with
:func:`confroute.uncertainty.answers.parse_number`. Seeded, so a benchmark and a probe-training run can
draw disjoint or identical sets on purpose.

    items = arithmetic_ladder(200, seed=0)       # cycles through (digits, op) evenly, shuffled
    items[0].messages()                          # [{"role": "user", "content": "What is 37 plus 48? ..."}]
    items[0].to_json()                           # one line of the probe data format (kind "number")
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from confroute.errors import InvalidInput

OPS: dict[str, str] = {"+": "plus", "-": "minus", "x": "times"}
INSTRUCTION = "Answer with the number only."


@dataclasses.dataclass(frozen=True)
class LadderItem:
    """One question: ``a op b`` with both operands of ``digits`` digits, and its exact ``answer``."""

    a: int
    b: int
    op: str
    digits: int

    @property
    def answer(self) -> int:
        return self.a + self.b if self.op == "+" else self.a - self.b if self.op == "-" else self.a * self.b

    @property
    def question(self) -> str:
        return f"What is {self.a} {OPS[self.op]} {self.b}? {INSTRUCTION}"

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.question}]

    def to_json(self) -> dict[str, Any]:
        """A record of the probe data format (``confroute.probes.data``)."""
        return {"messages": self.messages(), "answer": str(self.answer), "kind": "number",
                "meta": {"digits": self.digits, "op": self.op}}


def arithmetic_ladder(n: int, seed: int, digits: Sequence[int] = (1, 2, 3, 4),
                      ops: Sequence[str] = ("+", "-", "x")) -> list[LadderItem]:
    """``n`` questions cycling evenly through every (digits, op) pair, in a seeded random order."""
    if n < 0:
        raise InvalidInput(f"n must be >= 0, got {n}", field="n")
    if not digits or any(not 1 <= d <= 9 for d in digits):
        raise InvalidInput(f"digits must be in 1..9, got {tuple(digits)}", field="digits")
    if not ops or any(op not in OPS for op in ops):
        raise InvalidInput(f"ops must be among {tuple(OPS)}, got {tuple(ops)}", field="ops")
    rng = np.random.default_rng(seed)
    levels = list(itertools.islice(itertools.cycle(itertools.product(digits, ops)), n))
    items = [LadderItem(_operand(rng, d), _operand(rng, d), op, d) for d, op in levels]
    return [items[i] for i in rng.permutation(n)]


def _operand(rng: np.random.Generator, digits: int) -> int:
    low = 1 if digits == 1 else 10 ** (digits - 1)
    return int(rng.integers(low, 10 ** digits))
