"""The privacy veto: rules checked on the device before any text leaves it."""

from __future__ import annotations

import pytest

from confroute.contract import ChatMessage, ChatRole
from confroute.errors import InvalidInput
from edge_agent.routing import PrivacyRules

SSN = r"\b\d{3}-\d{2}-\d{4}\b"


def test_no_rules_veto_nothing() -> None:
    assert not PrivacyRules().vetoed([{"role": "user", "content": "my SSN is 123-45-6789"}])


def test_a_matching_pattern_in_any_message_vetoes_the_query() -> None:
    rules = PrivacyRules.compile([r"password", SSN])
    messages = [
        ChatMessage(ChatRole.SYSTEM, "be brief"),
        ChatMessage(ChatRole.USER, "my SSN is 123-45-6789, what is it for?"),
    ]

    assert rules.vetoed(messages)
    assert rules.reason(messages) == "privacy_patterns[1]"  # names the rule, never the matched text


def test_patterns_ignore_case_by_default() -> None:
    assert PrivacyRules.compile(["password"]).vetoed([{"role": "user", "content": "My PASSWORD is hunter2"}])
    assert not PrivacyRules.compile(["password"], ignore_case=False).vetoed([{"content": "PASSWORD"}])


def test_the_local_draft_answer_is_checked_too() -> None:
    rules = PrivacyRules.compile([SSN])
    messages = [{"role": "user", "content": "what is on my card?"}]

    assert not rules.vetoed(messages)
    assert rules.vetoed(messages, draft="Your number is 123-45-6789.")


def test_openai_content_parts_are_searched() -> None:
    message = {"role": "user", "content": [{"type": "text", "text": "the secret-project roadmap"}]}
    assert PrivacyRules.compile(["secret-project"]).vetoed([message])


def test_never_escalate_vetoes_every_query() -> None:
    rules = PrivacyRules(never_escalate=True)
    assert rules.vetoed([{"role": "user", "content": "hello"}])
    assert rules.reason([]) == "never_escalate"


def test_a_pattern_that_does_not_compile_is_invalid_input_naming_it() -> None:
    with pytest.raises(InvalidInput) as caught:
        PrivacyRules.compile(["fine", "(unclosed"])
    assert caught.value.field == "privacy_patterns[1]"
