"""Rendering a chat into the one prompt string that Triton's vLLM-style ``text_input`` takes.

Two formats, chosen per backend:

- ``chatml`` (default): ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message, then
  ``<|im_start|>assistant\\n`` so the model answers as the assistant. SmolLM2, Qwen and many other
  instruct models are trained on it.
- ``plain``: the messages' contents joined by blank lines, no roles and no generation prompt; for
  base models and for the echo model, which then answers with exactly the prompt's text.

A model whose template is neither should be given a Triton ensemble that applies its own template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from confroute.contract.escalation import ChatMessage

PromptFormat = Literal["chatml", "plain"]
PROMPT_FORMATS: tuple[str, ...] = get_args(PromptFormat)


def render_prompt(messages: Sequence[ChatMessage], prompt_format: PromptFormat = "chatml") -> str:
    """The prompt string for ``messages`` (oldest first) in ``prompt_format``."""
    if prompt_format == "plain":
        return "\n\n".join(message.content for message in messages)
    turns = "".join(f"<|im_start|>{m.role.value}\n{m.content}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"
