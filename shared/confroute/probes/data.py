"""The probe training data format: JSON lines, one question each.

    {"messages": [{"role": "user", "content": "What is 3 plus 5? ..."}], "answer": "8", "kind": "number"}
    {"question": "Which is a mammal?", "options": ["trout", "whale"], "answer": "B", "kind": "choice"}

* ``messages`` (chat messages) or ``question`` (one user turn; with ``options`` the options are listed
  under it as ``A. ...`` lines followed by "Answer with the letter.").
* ``answer`` - the gold answer; required for ``correct`` labels, optional for ``se`` / ``dse``.
* ``kind`` - ``number`` | ``choice`` | ``text`` (default ``text``); ``options`` - required for ``choice``.
* ``cloud_correct`` - optional: whether the cloud model's answer to this question is right (a gold outcome,
  as RouteLLM's data records per query); ``route`` labels use it instead of running a strong model.
* any other key (``meta``, ``id``) is kept out of the way.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from confroute.errors import InvalidInput
from confroute.uncertainty.answers import ANSWER_KINDS, AnswerKind, gold_answer, option_letters


@dataclasses.dataclass(frozen=True)
class Example:
    """One question of a training set."""

    messages: tuple[Mapping[str, str], ...]
    kind: AnswerKind
    answer: str | None = None
    options: tuple[str, ...] = ()
    cloud_correct: bool | None = None


def read_examples(path: str | os.PathLike[str]) -> list[Example]:
    """Reads a JSONL file; any bad line raises ``InvalidInput`` naming the file and line."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}", field="data") from exc
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            examples.append(parse_example(json.loads(line)))
        except (ValueError, InvalidInput) as exc:
            raise InvalidInput(f"{file}:{number}: {exc}", field="data") from exc
    if not examples:
        raise InvalidInput(f"{file} holds no examples", field="data")
    return examples


def write_examples(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> int:
    """Writes records as JSON lines; returns how many."""
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def parse_example(record: object) -> Example:
    if not isinstance(record, dict):
        raise InvalidInput("each line must be a JSON object", field="data")
    kind = record.get("kind", "text")
    if kind not in ANSWER_KINDS:
        raise InvalidInput(f"kind must be one of {ANSWER_KINDS}, got {kind!r}", field="kind")
    options = _strings(record.get("options", []), "options")
    if kind == "choice":
        option_letters(len(options))
    answer = record.get("answer")
    if answer is not None:
        answer = str(answer)
        gold_answer(answer, cast(AnswerKind, kind), options)  # unreadable gold fails here, not mid-training
    cloud_correct = record.get("cloud_correct")
    if cloud_correct is not None and not isinstance(cloud_correct, bool):
        raise InvalidInput("cloud_correct must be true or false", field="cloud_correct")
    return Example(_messages(record, options), cast(AnswerKind, kind), answer, options, cloud_correct)


def _messages(record: Mapping[str, Any], options: Sequence[str]) -> tuple[Mapping[str, str], ...]:
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages):
            raise InvalidInput("messages must be a non-empty list of {role, content} strings", field="messages")
        return tuple({"role": m["role"], "content": m["content"]} for m in messages)
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise InvalidInput("a record needs messages or a non-empty question", field="messages")
    if options:
        listed = "\n".join(f"{letter}. {option}" for letter, option in
                           zip(option_letters(len(options)), options, strict=True))
        question = f"{question}\n{listed}\nAnswer with the letter."
    return ({"role": "user", "content": question},)


def _strings(value: object, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{field} must be a list of strings", field=field)
    return tuple(value)
