"""Rendering chat messages with a bundle's Jinja chat template, in a sandbox, the way transformers does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ChatTemplate:
    """A Hugging Face style chat template (``messages``, ``add_generation_prompt``, special tokens)."""

    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None) -> None:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=["jinja2.ext.loopcontrols"])
        env.globals["raise_exception"] = raise_exception
        self._template = env.from_string(source)
        self._special = dict(special_tokens or {})

    def render(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True) -> str:
        return str(self._template.render(messages=list(messages), add_generation_prompt=add_generation_prompt,
                                         **self._special))
