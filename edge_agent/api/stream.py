"""A streamed chat completion as server-sent events, the way OpenAI's API sends one:

    data: {chat.completion.chunk, delta {"role": "assistant", "content": ""}}
    data: {chunk, delta {"content": "..."}}                       one per non-empty TextDelta (with its
                                                                   tokens' logprobs when asked for)
    data: {chunk, delta {}, finish_reason, "confroute": {...}}      once the AgentAnswer arrives; its
                                                                   ``model`` names the model that answered
    data: {chunk, choices [], usage, "confroute": {...}}            only with stream_options.include_usage
    data: [DONE]

An error after the response has begun (status 200 and headers are already sent) becomes one event
``data: {"error": {...}}`` (OpenAI's clients raise it as an APIError) and the stream ends without
``[DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from confroute.errors import RuntimeFailure
from edge_agent.answer import AgentAnswer, TextDelta
from edge_agent.api.errors import reply_for
from edge_agent.api.wire import SSE_DONE, Reply, chunk, closing_chunks, sse


async def sse_events(reply: Reply, first: TextDelta | AgentAnswer, rest: AsyncIterator[TextDelta | AgentAnswer], *,
                     include_usage: bool, with_logprobs: bool,
                     on_answer: Callable[[AgentAnswer], None]) -> AsyncIterator[bytes]:
    """The events of one stream; ``first`` was taken from the answerer before the headers were sent."""
    yield sse(chunk(reply, {"role": "assistant", "content": ""}, with_usage=include_usage))
    try:
        async for item in _chain(first, rest):
            if isinstance(item, AgentAnswer):
                on_answer(item)
                for body in closing_chunks(reply, item, include_usage):
                    yield sse(body)
                yield SSE_DONE
                return
            if item.text:
                tokens = item.logprobs if with_logprobs and item.side == "edge" else None
                yield sse(chunk(reply, {"content": item.text}, with_usage=include_usage, tokens=tokens))
        raise RuntimeFailure("the answer stream ended without its final answer")
    except Exception as exc:  # the status line is sent: the error can only travel as an event
        yield sse(reply_for(exc).body())


async def _chain(first: TextDelta | AgentAnswer,
                 rest: AsyncIterator[TextDelta | AgentAnswer]) -> AsyncIterator[TextDelta | AgentAnswer]:
    yield first
    async for item in rest:
        yield item
