"""The privacy veto: rules checked on the device before any text of a query leaves it.

Rules are regular expressions searched in every message (and in the local draft answer, which an
escalation after local generation carries), plus a switch that forbids escalation altogether. A
vetoed query is answered locally and recorded as vetoed; :meth:`PrivacyRules.reason` names the rule
(by index, never the matched text, so that logging the reason leaks nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confroute.contract import ChatMessage
from confroute.errors import InvalidInput

Message = ChatMessage | Mapping[str, object]


@dataclass(frozen=True)
class PrivacyRules:
    """Compiled patterns and the never-escalate switch; the default vetoes nothing."""

    patterns: tuple[re.Pattern[str], ...] = ()
    never_escalate: bool = False

    @classmethod
    def compile(
        cls, patterns: Iterable[str], *, never_escalate: bool = False, ignore_case: bool = True
    ) -> PrivacyRules:
        """Rules from pattern strings (e.g. from config); a pattern that does not compile is InvalidInput."""
        flags = re.IGNORECASE if ignore_case else 0
        compiled = []
        for i, pattern in enumerate(patterns):
            try:
                compiled.append(re.compile(pattern, flags))
            except re.error as exc:
                field = f"privacy_patterns[{i}]"
                raise InvalidInput(f"{field} is not a valid regular expression: {exc}", field=field) from exc
        return cls(tuple(compiled), never_escalate)

    def reason(self, messages: Iterable[Message], draft: str | None = None) -> str | None:
        """Why the query must stay on the device, or None when it may leave."""
        if self.never_escalate:
            return "never_escalate"
        texts = [*(_text(m) for m in messages), draft or ""]
        for i, pattern in enumerate(self.patterns):
            if any(pattern.search(text) for text in texts):
                return f"privacy_patterns[{i}]"
        return None

    def vetoed(self, messages: Iterable[Message], draft: str | None = None) -> bool:
        """True when nothing of this query may leave the device."""
        return self.reason(messages, draft) is not None


def _text(message: Message) -> str:
    """A message's text: a ChatMessage's content, or an OpenAI-style mapping's string or text parts."""
    if isinstance(message, ChatMessage):
        return message.content
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (part.get("text") for part in content if isinstance(part, Mapping))
        return "\n".join(text for text in parts if isinstance(text, str))
    return ""
