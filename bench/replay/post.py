"""Post-generation features: what the weak model's own answer reveals (the edge answers first here).

GSM8K answers are whole numbers, and Mixtral writes calculator annotations ``<<48/2=24>>`` and inline
``a op b = c`` steps, so an arithmetic slip or a non-integer final answer is visible without the gold answer.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_ANNOTATION = re.compile(r"<<([-+*/().\d\s]+)=\s*(-?[\d.,]+)\s*>>")
_INLINE = re.compile(r"(-?\d+(?:\.\d+)?(?:\s*[-+*/x×]\s*-?\d+(?:\.\d+)?)+)\s*=\s*\$?(-?\d+(?:,\d{3})*(?:\.\d+)?)")
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_HEDGES = ("however", "but ", "assum", "approximately", "actually", "mistake", "not possible", "can't",
           "cannot", "round", "wait", "correction", "incorrect", "unclear")


def _evaluate(expression: str) -> float | None:
    """Evaluates digits, + - * / and parentheses (via the ast, never eval); None when it cannot."""
    try:
        tree = ast.parse(expression.replace("×", "*").replace("x", "*").strip(), mode="eval")
        return _arith(tree.body)
    except (SyntaxError, ZeroDivisionError, OverflowError, ValueError):
        return None


def _arith(node: ast.expr) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _arith(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _arith(node.left), _arith(node.right)
        return None if left is None or right is None else _OPS[type(node.op)](left, right)
    return None


def _slips(pattern: re.Pattern[str], text: str) -> tuple[int, int]:
    checked = wrong = 0
    for expression, claimed in pattern.findall(text):
        value = _evaluate(expression)
        if value is None:
            continue
        checked += 1
        if abs(value - float(claimed.replace(",", ""))) > 1e-6 * max(1.0, abs(value)) + 1e-9:
            wrong += 1
    return checked, wrong


def _final_answer(text: str) -> str | None:
    tail = text.split("####")[-1] if "####" in text else text
    numbers = _NUMBER.findall(tail)
    return numbers[-1] if numbers else None


def answer_features(answers: Sequence[str]) -> FloatArray:
    """Per answer: arithmetic slips (annotations, inline), non-integer / missing final answer, ####
    present, length, hedging words."""
    rows = []
    for text in answers:
        low = text.lower()
        ann_checked, ann_wrong = _slips(_ANNOTATION, text)
        inl_checked, inl_wrong = _slips(_INLINE, text)
        final = _final_answer(text)
        non_integer = final is not None and "." in final and float(final.replace(",", "")) % 1 != 0
        rows.append((ann_wrong, float(ann_wrong > 0), inl_wrong, float(inl_wrong > 0), np.log1p(ann_checked),
                     np.log1p(inl_checked), float(non_integer), float(final is None), float("####" in text),
                     np.log1p(len(text)), np.log1p(text.count("\n")), sum(low.count(h) for h in _HEDGES)))
    return np.array(rows, dtype=np.float64).reshape(len(answers), 12)
