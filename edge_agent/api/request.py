"""A ``POST /v1/chat/completions`` body, checked and mapped onto confroute's types.

Mapping: ``messages`` (role + content; content is a string or an array of ``{"type": "text"}`` parts,
joined with newlines; the ``developer`` role is read as ``system``), ``model`` (one of the answerer's
model ids), ``max_completion_tokens`` or else ``max_tokens``, ``temperature``, ``top_p``, ``seed``,
``stop`` (a string or a list), ``n`` (only 1), ``stream``, ``stream_options.include_usage`` and
``logprobs`` (the chosen token's log-probability, as the fused head computes it).
Fields this server cannot honour are refused with a 400 naming them rather than silently ignored:
``tools``/``tool_choice``/``functions``/``function_call`` (no tool calling), ``response_format`` other
than ``text``, a non-empty ``logit_bias``, non-zero ``presence_penalty``/``frequency_penalty``,
``top_logprobs`` above 0 (the graph returns the argmax log-probability, not the top-k), ``n`` above 1.
Ranges are OpenAI's (``temperature`` 0..2, ``top_p`` 0..1, penalties -2..2, ``top_logprobs`` 0..20).
A JSON ``null`` means "not given". Other fields are ignored, as OpenAI's API ignores unknown ones.
Every problem raises ``InvalidInput`` whose ``field`` is the offending request field (the error's
``param``), except an unknown model: 404 ``model_not_found``. Strings must be encodable as UTF-8 (JSON
lets a lone surrogate such as ``\ud800`` through; no tokenizer or protobuf accepts one) and ``seed``
must lie in [0, 2^63) (what the sampler and the escalation's int64 field can carry).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from confroute.engine import SamplingParams
from confroute.errors import InvalidInput
from edge_agent.api.errors import HttpError

MAX_SEED = 2**63 - 1
MAX_TEMPERATURE = 2.0
MAX_TOP_LOGPROBS = 20
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclasses.dataclass(frozen=True)
class ChatRequest:
    """What the answerer is asked, and how the answer is to be sent back."""

    model: str
    messages: tuple[Mapping[str, str], ...]
    params: SamplingParams
    stream: bool = False
    include_usage: bool = False
    logprobs: bool = False


def parse_chat_request(body: bytes, model_ids: Sequence[str]) -> ChatRequest:
    """Checks ``body`` and maps it; raises ``InvalidInput`` (400) or ``HttpError`` (404 unknown model)."""
    data = _load_object(body)
    model = _string(data, "model")
    if model is None:
        raise InvalidInput("you must provide a model parameter", field="model")
    if model not in model_ids:
        raise HttpError(404, f"The model `{model}` does not exist; this server offers {list(model_ids)}",
                        param="model", code="model_not_found")
    n = _integer(data, "n")
    if n not in (None, 1):
        raise InvalidInput(f"n must be 1 (one answer per request), got {n}", field="n")
    stream = _boolean(data, "stream") or False
    options = data.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidInput("stream_options must be an object", field="stream_options")
    include_usage = _boolean(options or {}, "include_usage", "stream_options.include_usage") or False
    _refuse_unsupported(data)
    logprobs = _boolean(data, "logprobs") or False
    return ChatRequest(model, _messages(data.get("messages")), _params(data), stream, include_usage, logprobs)


def _refuse_unsupported(data: Mapping[str, Any]) -> None:
    """A 400 naming the first field asking for something this server does not do (never a silent ignore)."""
    for field in ("tools", "functions"):
        value = data.get(field)
        if value is not None and not isinstance(value, list):
            raise InvalidInput(f"{field} must be a list, got {type(value).__name__}", field=field)
        if value:
            raise InvalidInput(f"{field}: this model does not call tools", field=field)
    for field in ("tool_choice", "function_call"):
        if data.get(field) not in (None, "none"):
            raise InvalidInput(f"{field}: this model does not call tools (only \"none\" is accepted)", field=field)
    response_format = data.get("response_format")
    if response_format is not None and (not isinstance(response_format, dict)
                                        or response_format.get("type") != "text"):
        raise InvalidInput("response_format: only {\"type\": \"text\"} is supported (no JSON mode or schema)",
                           field="response_format")
    logit_bias = data.get("logit_bias")
    if logit_bias is not None and (not isinstance(logit_bias, dict) or logit_bias):
        raise InvalidInput("logit_bias is not supported by this server", field="logit_bias")
    for field in ("presence_penalty", "frequency_penalty"):
        penalty = _number(data, field)
        if penalty is not None and not -2.0 <= penalty <= 2.0:
            raise InvalidInput(f"{field} must be in [-2, 2], got {penalty}", field=field)
        if penalty:
            raise InvalidInput(f"{field} is not supported by this server (only 0)", field=field)
    top = _integer(data, "top_logprobs")
    if top is not None and not 0 <= top <= MAX_TOP_LOGPROBS:
        raise InvalidInput(f"top_logprobs must be in [0, {MAX_TOP_LOGPROBS}], got {top}", field="top_logprobs")
    if top:
        raise InvalidInput("top_logprobs above 0 is not supported: the model returns only the chosen token's "
                           "log-probability (use logprobs: true)", field="top_logprobs")


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"the request body must be a JSON object, got {type(data).__name__}")
    return data


def _messages(raw: object) -> tuple[Mapping[str, str], ...]:
    if raw is None:
        raise InvalidInput("you must provide messages", field="messages")
    if not isinstance(raw, list):
        raise InvalidInput("messages must be an array", field="messages")
    if not raw:
        raise InvalidInput("messages must not be empty", field="messages")
    return tuple(_message(item, f"messages[{i}]") for i, item in enumerate(raw))


def _message(item: object, where: str) -> Mapping[str, str]:
    if not isinstance(item, dict):
        raise InvalidInput(f"{where} must be an object", field=where)
    role = item.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise InvalidInput(f"{where}.role must be one of {sorted(_ROLES)}, got {role!r}", field=f"{where}.role")
    content = _content(item.get("content"), f"{where}.content")
    return {"role": _ROLES[role], "content": _utf8(content, f"{where}.content")}


def _content(raw: object, where: str) -> str:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise InvalidInput(f"{where} must be a string or an array of text parts", field=where)
    texts = []
    for part in raw:
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidInput(f"{where} parts must be {{\"type\": \"text\", \"text\": string}} "
                               "(this model reads text only)", field=where)
        texts.append(part["text"])
    return "\n".join(texts)


def _params(data: Mapping[str, Any]) -> SamplingParams:
    max_tokens = None
    for tokens_field in ("max_tokens", "max_completion_tokens"):  # both checked; the second wins when given
        given_tokens = _integer(data, tokens_field)
        if given_tokens is not None and given_tokens < 1:
            raise InvalidInput(f"{tokens_field} must be >= 1, got {given_tokens}", field=tokens_field)
        max_tokens = given_tokens if given_tokens is not None else max_tokens
    temperature = _number(data, "temperature")
    if temperature is not None and not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise InvalidInput(f"temperature must be in [0, 2], got {temperature}", field="temperature")
    seed = _integer(data, "seed")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise InvalidInput(f"seed must be in [0, 2^63 - 1], got {seed}", field="seed")
    given: dict[str, Any] = {
        "max_new_tokens": max_tokens, "temperature": temperature,
        "top_p": _number(data, "top_p"), "seed": seed, "stop": _stop(data.get("stop")),
    }
    # SamplingParams checks the ranges; its fields are named as the request's (temperature, top_p, stop).
    return SamplingParams(**{name: value for name, value in given.items() if value is not None})


def _stop(raw: object) -> tuple[str, ...] | None:
    if raw is None or isinstance(raw, str):
        return None if raw is None else (_utf8(raw, "stop"),)
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return tuple(_utf8(item, "stop") for item in raw)
    raise InvalidInput("stop must be a string or an array of strings", field="stop")


def _utf8(text: str, field: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not valid Unicode text (a lone surrogate at {exc.start})", field=field) from exc
    return text


def _typed(data: Mapping[str, Any], key: str, kinds: tuple[type, ...], what: str, field: str | None) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise InvalidInput(f"{field or key} must be {what}, got {type(value).__name__}", field=field or key)
    return value


def _string(data: Mapping[str, Any], key: str) -> str | None:
    value: str | None = _typed(data, key, (str,), "a string", None)
    return None if value is None else _utf8(value, key)


def _integer(data: Mapping[str, Any], key: str) -> int | None:
    """An integer; a float with no fractional part (``71.0``) is one too, as JSON Schema counts it."""
    value = data.get(key)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    integer: int | None = _typed(data, key, (int,), "an integer", None)
    return integer


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value: int | float | None = _typed(data, key, (int, float), "a number", None)
    return None if value is None else float(value)


def _boolean(data: Mapping[str, Any], key: str, field: str | None = None) -> bool | None:
    value: bool | None = _typed(data, key, (bool,), "a boolean", field)
    return value
