"""Strict reading of a judge's answer: one unambiguous verdict, or none.

A judge that wrote no verdict, several different ones, or a rating outside 1..10 gave *no* verdict:
the outcome stays unlabelled rather than risk a wrong label. Single grading maps the rating of the
edge answer (the cloud answer as reference) to a label: ``correct_at`` or above -> correct, ``wrong_at``
or below -> incorrect, in between -> no label. Pairwise (edge = A, cloud = B): A better or a tie ->
correct (the edge answer was good enough), B better -> incorrect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from confroute.contract.enums import Label

_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_CHOICE = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_PAIRWISE_LABELS = {"A": Label.CORRECT, "C": Label.CORRECT, "B": Label.INCORRECT}


@dataclass(frozen=True)
class Verdict:
    """The label a judge's text supports (None: no label), and why."""

    label: Label | None
    reason: str


def single_verdict(text: str, correct_at: float = 7.0, wrong_at: float = 4.0) -> Verdict:
    """The label of a single-grading answer (``Rating: [[7]]``)."""
    ratings = {float(match) for match in _RATING.findall(text)}
    if len(ratings) != 1:
        return Verdict(None, f"{len(ratings)} distinct ratings in the judge's answer, expected exactly one")
    rating = ratings.pop()
    if not 1.0 <= rating <= 10.0:
        return Verdict(None, f"rating {rating:g} is outside 1..10")
    if rating >= correct_at:
        return Verdict(Label.CORRECT, f"rating {rating:g} >= {correct_at:g}")
    if rating <= wrong_at:
        return Verdict(Label.INCORRECT, f"rating {rating:g} <= {wrong_at:g}")
    return Verdict(None, f"rating {rating:g} is between {wrong_at:g} and {correct_at:g}: undecided")


def pairwise_verdict(text: str) -> Verdict:
    """The label of a pairwise answer (``[[A]]``, ``[[B]]`` or ``[[C]]``), the edge answer being A."""
    choices = set(_CHOICE.findall(text))
    if len(choices) != 1:
        return Verdict(None, f"{len(choices)} distinct verdicts in the judge's answer, expected exactly one")
    choice = choices.pop()
    return Verdict(_PAIRWISE_LABELS[choice], f"verdict [[{choice}]]")
