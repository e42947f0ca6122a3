"""Property-based: any chat-completions body, from near-valid to garbage, gets a clear answer (200 or a
4xx in OpenAI's error shape, never a 500), and the API keeps serving. Thousands of examples."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.api import ApiServer
from tests.edge_agent.api.http_helpers import MODEL, assert_still_serving, call

CHAT = "/v1/chat/completions"
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=8)
MESSAGE = st.fixed_dictionaries({}, optional={
    "role": st.sampled_from(["user", "system", "assistant", "developer", "tool", ""]) | JSON,
    "content": st.text(max_size=20) | JSON | st.lists(st.fixed_dictionaries({"type": st.just("text"),
                                                                             "text": st.text(max_size=8) | JSON})),
})
BODY = st.fixed_dictionaries({}, optional={
    "model": st.just(MODEL) | JSON,
    "messages": st.lists(MESSAGE, max_size=3) | JSON,
    "max_tokens": st.integers(min_value=-(2**65), max_value=2**65) | JSON,
    "temperature": st.floats() | JSON,
    "top_p": st.floats() | JSON,
    "seed": st.integers(min_value=-(2**70), max_value=2**70) | JSON,
    "stop": st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=3) | JSON,
    "n": st.integers(-2, 3) | JSON,
    "stream": st.booleans() | JSON,
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans() | JSON}) | JSON,
})
LONE_SURROGATES = st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1,
                          max_size=3)


@pytest.mark.slow
def test_any_body_gets_a_clear_answer(server: ApiServer) -> None:
    @settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(BODY | JSON, st.booleans(), LONE_SURROGATES)
    def check(body: Any, surrogate: bool, lone: str) -> None:
        if surrogate and isinstance(body, dict):
            body["messages"] = [{"role": "user", "content": f"a{lone}b"}]
        payload = json.dumps(body, allow_nan=True).encode()
        status, _, reply = call(server, "POST", CHAT, payload, {"Content-Type": "application/json"})
        assert status in (200, 400, 404), (status, body, reply)
        if status != 200:
            assert set(reply) == {"error"}, reply

    check()
    assert_still_serving(server)
