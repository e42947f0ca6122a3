"""The JSON objects the API sends, shaped as OpenAI's: completions, stream chunks, models, SSE framing.

Extension (documented): a ``chat.completion`` object, and the stream chunk that carries
``finish_reason`` (and the usage chunk when ``stream_options.include_usage`` is set), have a
``"confroute"`` field, :meth:`AgentAnswer.routing`: query id, side that answered, decision,
confidence, threshold, policy version, escalation-unavailable flag, shadow flag, latency. OpenAI clients
keep unknown fields (``completion.model_extra["confroute"]`` in the Python client).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from edge_agent.answer import AgentAnswer, TokenLogprob

#: The server-sent event that ends a successful stream.
SSE_DONE = b"data: [DONE]\n\n"
OWNER = "confroute"


@dataclasses.dataclass(frozen=True)
class Reply:
    """What every object of one completion shares: its id, creation time and the model asked for."""

    completion_id: str
    created: int
    model: str


def completion(reply: Reply, answer: AgentAnswer, tokens: Sequence[TokenLogprob] | None = None) -> dict[str, Any]:
    """A whole ``chat.completion`` object; ``model`` names the model that answered (the cloud's when it did).

    ``tokens``: the answer's token log-probabilities when ``logprobs`` was asked for (None: not asked; a
    cloud answer has none and reports ``"logprobs": null``)."""
    served = tokens is not None and answer.side == "edge"
    return {
        "id": reply.completion_id, "object": "chat.completion", "created": reply.created, "model": answer.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text, "refusal": None},
                     "logprobs": logprobs(tokens or ()) if served else None, "finish_reason": answer.finish_reason}],
        "usage": usage(answer), "system_fingerprint": None, "confroute": answer.routing(),
    }


def chunk(reply: Reply, delta: dict[str, Any], *, finish_reason: str | None = None, with_usage: bool = False,
          tokens: Sequence[TokenLogprob] | None = None, model: str | None = None) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with one choice; ``with_usage`` adds ``"usage": null`` as OpenAI does.

    ``model``: the model that answered, once known (the final chunks); before, the model asked for."""
    body: dict[str, Any] = {
        "id": reply.completion_id, "object": "chat.completion.chunk", "created": reply.created,
        "model": model or reply.model, "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None if tokens is None else logprobs(tokens),
                     "finish_reason": finish_reason}],
    }
    if with_usage:
        body["usage"] = None
    return body


def closing_chunks(reply: Reply, answer: AgentAnswer, include_usage: bool) -> list[dict[str, Any]]:
    """The chunk with ``finish_reason`` and the routing extension, then the usage chunk if asked for."""
    final = chunk(reply, {}, finish_reason=answer.finish_reason, with_usage=include_usage, model=answer.model)
    final["confroute"] = answer.routing()
    if not include_usage:
        return [final]
    usage_chunk = chunk(reply, {}, with_usage=True, model=answer.model)
    usage_chunk.update(choices=[], usage=usage(answer), confroute=answer.routing())
    return [final, usage_chunk]


def logprobs(tokens: Sequence[TokenLogprob]) -> dict[str, Any]:
    """OpenAI's ``logprobs`` of a choice: each token's text, log-probability and UTF-8 bytes (no top-k)."""
    return {"content": [{"token": token.text, "logprob": token.logprob, "bytes": list(token.text.encode()),
                         "top_logprobs": []} for token in tokens], "refusal": None}


def usage(answer: AgentAnswer) -> dict[str, int]:
    """Token counts as OpenAI reports them."""
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens}


def model_object(model_id: str, created: int) -> dict[str, Any]:
    """One entry of ``/v1/models``."""
    return {"id": model_id, "object": "model", "created": created, "owned_by": OWNER}


def model_list(model_ids: Sequence[str], created: int) -> dict[str, Any]:
    """The ``/v1/models`` body."""
    return {"object": "list", "data": [model_object(model_id, created) for model_id in model_ids]}


ROUTING_HEADERS = ("X-Confroute-Side", "X-Confroute-Policy-Version", "X-Confroute-Query-Id", "X-Confroute-Confidence")


def routing_headers(answer: AgentAnswer) -> list[tuple[str, str]]:
    """``X-Confroute-*`` headers of a finished answer (no confidence header when there was no decision)."""
    side, policy, query, confidence = ROUTING_HEADERS
    headers = [(side, answer.side), (policy, answer.policy_version), (query, answer.query_id)]
    if answer.confidence is not None:
        headers.append((confidence, f"{answer.confidence:.6g}"))
    return headers


def encode(body: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sse(body: Any) -> bytes:
    """One server-sent event carrying ``body`` as JSON."""
    return b"data: " + encode(body) + b"\n\n"
