"""The judge's prompts: MT-Bench's (FastChat ``judge_prompts.jsonl``, Apache-2.0), verbatim.

* ``single-math-v1``: single-answer grading against a reference answer (here: the cloud's answer),
  verdict ``[[rating]]`` from 1 to 10. Used for "is the edge answer right?" with the cloud as reference.
* ``pair-v2``: pairwise comparison of two answers, verdict ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie).

:func:`load_prompt` reads any other prompt of that file by name (``--judge-prompts``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from confroute.contract.enums import ChatRole
from confroute.contract.escalation import ChatMessage
from confroute.errors import InvalidInput

Kind = Literal["single", "pairwise"]


@dataclass(frozen=True)
class JudgePrompt:
    """One MT-Bench judge prompt: a system prompt and a user template with ``str.format`` fields."""

    name: str
    kind: Kind
    system: str
    template: str

    def messages(self, question: str, edge_answer: str, cloud_answer: str) -> tuple[ChatMessage, ...]:
        """The chat to send: single grading rates the edge answer with the cloud answer as reference;
        pairwise shows the edge answer as A and the cloud answer as B."""
        fields = {"question": question, "answer": edge_answer, "ref_answer_1": cloud_answer,
                  "answer_a": edge_answer, "answer_b": cloud_answer}
        try:
            user = self.template.format(**fields)
        except (KeyError, IndexError) as exc:
            raise InvalidInput(f"judge prompt {self.name} needs a field confroute does not fill: {exc}") from exc
        return (ChatMessage(ChatRole.SYSTEM, self.system), ChatMessage(ChatRole.USER, user))


SINGLE_WITH_REFERENCE = JudgePrompt(
    name='single-math-v1',
    kind='single',
    system=(
        'You are a helpful assistant.'
    ),
    template=(
        '[Instruction]\n'
        'Please act as an impartial judge and evaluate the quality of the response provided by an AI '
        'assistant to the user question displayed below. Your evaluation should consider correctness and '
        "helpfulness. You will be given a reference answer and the assistant's answer. Begin your evaluation "
        "by comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be"
        ' as objective as possible. After providing your explanation, you must rate the response on a scale '
        'of 1 to 10 by strictly following this format: "[[rating]]", for example: "Rating: [[5]]".\n'
        '\n'
        '[Question]\n'
        '{question}\n'
        '\n'
        '[The Start of Reference Answer]\n'
        '{ref_answer_1}\n'
        '[The End of Reference Answer]\n'
        '\n'
        "[The Start of Assistant's Answer]\n"
        '{answer}\n'
        "[The End of Assistant's Answer]"
    ),
)
PAIRWISE = JudgePrompt(
    name='pair-v2',
    kind='pairwise',
    system=(
        'Please act as an impartial judge and evaluate the quality of the responses provided by two AI '
        'assistants to the user question displayed below. You should choose the assistant that follows the '
        "user's instructions and answers the user's question better. Your evaluation should consider factors "
        'such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of their '
        'responses. Begin your evaluation by comparing the two responses and provide a short explanation. '
        'Avoid any position biases and ensure that the order in which the responses were presented does not '
        'influence your decision. Do not allow the length of the responses to influence your evaluation. Do '
        'not favor certain names of the assistants. Be as objective as possible. After providing your '
        'explanation, output your final verdict by strictly following this format: "[[A]]" if assistant A is '
        'better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'
    ),
    template=(
        '[User Question]\n'
        '{question}\n'
        '\n'
        "[The Start of Assistant A's Answer]\n"
        '{answer_a}\n'
        "[The End of Assistant A's Answer]\n"
        '\n'
        "[The Start of Assistant B's Answer]\n"
        '{answer_b}\n'
        "[The End of Assistant B's Answer]"
    ),
)
BUILT_IN = {prompt.name: prompt for prompt in (SINGLE_WITH_REFERENCE, PAIRWISE)}


def load_prompt(path: Path, name: str) -> JudgePrompt:
    """The prompt ``name`` of an MT-Bench ``judge_prompts.jsonl`` file."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry.get("name") == name:
            kind: Kind = "single" if entry["type"] == "single" else "pairwise"
            return JudgePrompt(name, kind, entry["system_prompt"], entry["prompt_template"])
    raise InvalidInput(f"no judge prompt named {name!r} in {path}", field="judge_prompt")
