"""Rendering a chat into the prompt string of Triton's ``text_input``."""

from __future__ import annotations

from cloud_service.backends.prompt import render_prompt
from confroute.contract.enums import ChatRole
from confroute.contract.escalation import ChatMessage

CHAT = (ChatMessage(ChatRole.SYSTEM, "Be brief."), ChatMessage(ChatRole.USER, "What is 12 x 7?"))


def test_chatml_wraps_each_turn_and_ends_with_the_assistants_turn() -> None:
    assert render_prompt(CHAT) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 12 x 7?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_plain_joins_the_contents_with_blank_lines_and_no_roles() -> None:
    assert render_prompt(CHAT, "plain") == "Be brief.\n\nWhat is 12 x 7?"
