"""Reading a generated answer down to its final answer, and checking it against a gold answer.

Three kinds of answer (``AnswerKind``):

* ``number`` - the **last** number in the text: thousands separators and units/currency around it are
  ignored, and the value is canonical (``"12.0"``, ``"12"`` and ``"12.00"`` all read ``"12"``, ``"$1,234.50"``
  reads ``"1234.5"``, ``"-0"`` reads ``"0"``). "12 times 7 is 84." reads ``"84"``.
* ``choice`` - a multiple-choice letter (``"A"``, ``"B"``, ...), given the options in order. An explicit
  letter ("The answer is (B)", "B) ...", a lone "B") wins; otherwise the one option whose text appears in
  the answer; otherwise nothing.
* ``text`` - short free text, normalised as SQuAD does: lowercase, punctuation and the articles
  a/an/the removed, whitespace collapsed. A text answer is correct when the normalised gold appears in the
  normalised answer as whole words ("Paris" is right in "It is Paris, France").

Unparseable answers read as ``None`` and are never correct. Pure functions.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Literal, get_args

from confroute.errors import InvalidInput

AnswerKind = Literal["number", "choice", "text"]
ANSWER_KINDS: tuple[str, ...] = get_args(AnswerKind)

# A minus sign only when it does not follow a word or digit ("5-3" is 5 and 3, not 5 and -3).
_NUMBER = re.compile(r"(?:(?<![\w.])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_LETTER_PATTERNS = (
    re.compile(r"(?i:answer\s*(?:is|:)?)\s*\(?([A-Z])\)?(?![A-Za-z])"),
    re.compile(r"\(([A-Z])\)"),
    re.compile(r"^\s*([A-Z])\s*(?:[.):]|$)"),
)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def parse_number(text: str) -> str | None:
    """The last number in ``text`` as a canonical decimal string, or None when there is none."""
    found = _NUMBER.findall(text)
    return canonical_number(found[-1]) if found else None


def canonical_number(token: str) -> str | None:
    """``"1,234.50"`` -> ``"1234.5"``; ``"12.0"`` -> ``"12"``; not a number -> None."""
    try:
        value = Decimal(token.replace(",", "").strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    value = value.normalize()
    if value == 0:
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def option_letters(count: int) -> tuple[str, ...]:
    if not 1 <= count <= 26:
        raise InvalidInput(f"a multiple-choice question needs 1 to 26 options, got {count}", field="options")
    return tuple(string.ascii_uppercase[:count])


def parse_choice(text: str, options: Sequence[str]) -> str | None:
    """The option letter the answer picks, or None."""
    letters = option_letters(len(options))
    for pattern in _LETTER_PATTERNS:
        match = pattern.search(text.strip())
        if match and match.group(1) in letters:
            return match.group(1)
    answer = f" {normalise_text(text)} "
    hits = [letter for letter, option in zip(letters, options, strict=True)
            if (norm := normalise_text(option)) and f" {norm} " in answer]
    return hits[0] if len(hits) == 1 else None


def normalise_text(text: str) -> str:
    """Lowercase, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def final_answer(text: str, kind: AnswerKind, options: Sequence[str] = ()) -> str | None:
    """The normalised final answer of a generated ``text`` (the clustering key of semantic entropy)."""
    if kind == "number":
        return parse_number(text)
    if kind == "choice":
        return parse_choice(text, options)
    if kind == "text":
        return normalise_text(text) or None
    raise InvalidInput(f"answer kind must be one of {ANSWER_KINDS}, got {kind!r}", field="kind")


def gold_answer(gold: str, kind: AnswerKind, options: Sequence[str] = ()) -> str:
    """The gold answer in the same normal form; raises ``InvalidInput`` when it cannot be read."""
    if kind == "choice":
        letters = option_letters(len(options))
        stripped = gold.strip().strip("()").upper()
        if stripped in letters:
            return stripped
        normalised = [normalise_text(option) for option in options]
        if normalise_text(gold) in normalised:
            return letters[normalised.index(normalise_text(gold))]
        raise InvalidInput(f"gold answer {gold!r} is neither an option letter nor an option's text", field="answer")
    value = canonical_number(gold) if kind == "number" else final_answer(gold, kind, options)
    if value is None:
        raise InvalidInput(f"gold answer {gold!r} cannot be read as a {kind} answer", field="answer")
    return value


def is_correct(text: str, gold: str, kind: AnswerKind, options: Sequence[str] = ()) -> bool:
    """Whether a generated ``text`` gives the ``gold`` answer (see the module docstring per kind)."""
    expected = gold_answer(gold, kind, options)
    got = final_answer(text, kind, options)
    if got is None:
        return False
    if kind == "text":
        return f" {expected} " in f" {got} "
    return got == expected
