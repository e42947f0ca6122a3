from __future__ import annotations

import json
from pathlib import Path

import pytest

from confroute.errors import InvalidInput
from confroute.probes.data import read_examples, write_examples


def write(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n", encoding="utf-8")
    return path


def test_messages_questions_and_options_become_chat_prompts(tmp_path: Path) -> None:
    examples = read_examples(write(
        tmp_path / "d.jsonl",
        {"messages": [{"role": "user", "content": "2+2?"}], "answer": 4, "kind": "number"},
        {"question": "Which is a mammal?", "options": ["trout", "whale"], "answer": "B", "kind": "choice"},
        {"question": "Capital of France?", "meta": {"source": "x"}},
    ))
    assert [e.kind for e in examples] == ["number", "choice", "text"]
    assert examples[0].answer == "4"
    assert examples[1].messages[0]["content"].endswith("A. trout\nB. whale\nAnswer with the letter.")
    assert examples[2].answer is None


@pytest.mark.parametrize(("record", "needle"), [
    ({"question": "q", "kind": "essay"}, "kind must be"),
    ({"question": "q", "kind": "choice", "answer": "A"}, "1 to 26 options"),
    ({"question": "q", "kind": "choice", "options": ["x", "y"], "answer": "C"}, "neither an option letter"),
    ({"question": "q", "kind": "number", "answer": "lots"}, "cannot be read"),
    ({"messages": []}, "messages must be"),
    ({"answer": "1"}, "needs messages or"),
    (["not", "an", "object"], "JSON object"),
])
def test_bad_records_name_the_file_and_line(tmp_path: Path, record: object, needle: str) -> None:
    path = write(tmp_path / "bad.jsonl", {"question": "fine"}, record)
    with pytest.raises(InvalidInput, match=needle) as err:
        read_examples(path)
    assert "bad.jsonl:2:" in str(err.value)


def test_unreadable_empty_and_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        read_examples(tmp_path / "missing.jsonl")
    with pytest.raises(InvalidInput, match="no examples"):
        read_examples(write(tmp_path / "empty.jsonl"))
    (tmp_path / "broken.jsonl").write_text('{"question": \n', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"broken\.jsonl:1:"):
        read_examples(tmp_path / "broken.jsonl")


def test_written_records_read_back(tmp_path: Path) -> None:
    assert write_examples(tmp_path / "w.jsonl", [{"question": "é?", "answer": "1", "kind": "number"}]) == 1
    assert read_examples(tmp_path / "w.jsonl")[0].messages[0]["content"] == "é?"
