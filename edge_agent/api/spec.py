"""The device API's OpenAPI 3.1 document: every route, its request body and its responses, in one table.

``OPERATIONS`` is the table. A route is one ``Operation`` entry (method, path, summary, request schema,
responses); :func:`openapi_document` builds ``GET /openapi.json`` from it, with the served model ids as
the ``model`` enum. A test checks that the routes the server dispatches and the operations described here
are the same set, and a schemathesis run fuzzes the live server against this document, so the schemas
must say what the validation (:mod:`edge_agent.api.request`) really accepts: a request the schema calls
valid is answered (or refused for a reason only the model knows: an unknown model id, a prompt too long
for the context), and one it calls invalid gets a 4xx.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from edge_agent.api.feedback import MAX_ID_CHARS
from edge_agent.api.request import MAX_SEED, MAX_TEMPERATURE, MAX_TOP_LOGPROBS

Schema = dict[str, Any]
JSON = "application/json"
SSE = "text/event-stream"
TEXT = "text/plain"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    """``schema`` or JSON null (the API reads a null field as not given)."""
    return {"anyOf": [schema, {"type": "null"}]}


@dataclasses.dataclass(frozen=True)
class Reply:
    """One documented response: its description and body schema per content type."""

    description: str
    content: Mapping[str, Schema] = dataclasses.field(default_factory=dict)
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)  # header name -> description


ERROR = Reply("an error, in OpenAI's shape", {JSON: _ref("Error")})
RETRY = Reply("an error, in OpenAI's shape; retry after the delay given", {JSON: _ref("Error")},
              {"Retry-After": "seconds to wait before retrying"})
#: What any route may answer besides its own: a missing API key, an unsupported method, a body too large
#: or too slow, overload.
COMMON: Mapping[int, Reply] = {401: ERROR, 405: ERROR, 408: ERROR, 411: ERROR, 413: ERROR, 429: RETRY}


@dataclasses.dataclass(frozen=True)
class Operation:
    """One route: ``request`` is the JSON body's schema (None: no body); ``responses`` by status."""

    method: str
    path: str
    operation_id: str
    summary: str
    responses: Mapping[int, Reply]
    request: Schema | None = None
    tag: str = "openai"
    authenticated: bool = True  # needs the API key when one is configured

    def render(self) -> dict[str, Any]:
        body: dict[str, Any] = {"operationId": self.operation_id, "summary": self.summary, "tags": [self.tag],
                                "responses": {str(s): _reply(r) for s, r in sorted({**COMMON, **self.responses}
                                                                                   .items())}}
        params = [p.strip("{}") for p in self.path.split("/") if p.startswith("{")]
        if params:
            body["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                  for p in params]
        if self.request is not None:
            body["requestBody"] = {"required": True, "content": {JSON: {"schema": self.request}}}
        if not self.authenticated:
            body["security"] = []
        return body


def _reply(reply: Reply) -> dict[str, Any]:
    body: dict[str, Any] = {"description": reply.description}
    if reply.content:
        body["content"] = {kind: {"schema": schema} for kind, schema in reply.content.items()}
    if reply.headers:
        body["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                           for name, text in reply.headers.items()}
    return body


# -- schemas ------------------------------------------------------------------------------------------

_TEXT_PART: Schema = {"type": "object", "required": ["type", "text"],
                      "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}
_MESSAGE: Schema = {
    "type": "object", "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _TEXT_PART}]},
    },
}
_STOP: Schema = {"type": "string", "minLength": 1}
_ZERO_PENALTY: Schema = _nullable({"type": "number", "minimum": 0, "maximum": 0,
                                   "description": "only 0: penalties are not supported"})


def chat_request(model_ids: Sequence[str]) -> Schema:
    """``POST /v1/chat/completions``'s body, as :func:`edge_agent.api.request.parse_chat_request` checks it."""
    return {
        "type": "object", "required": ["model", "messages"],
        "description": "Unknown fields are ignored, as OpenAI's API does; null means not given.",
        "properties": {
            "model": {"type": "string", "enum": list(model_ids)},
            "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
            "max_tokens": _nullable({"type": "integer", "minimum": 1}),
            "max_completion_tokens": _nullable({"type": "integer", "minimum": 1}),
            "temperature": _nullable({"type": "number", "minimum": 0, "maximum": MAX_TEMPERATURE}),
            "top_p": _nullable({"type": "number", "exclusiveMinimum": 0, "maximum": 1}),
            "seed": _nullable({"type": "integer", "minimum": 0, "maximum": MAX_SEED}),
            "stop": _nullable({"anyOf": [_STOP, {"type": "array", "items": _STOP}]}),
            "n": _nullable({"const": 1}),
            "stream": _nullable({"type": "boolean"}),
            "stream_options": _nullable({"type": "object",
                                         "properties": {"include_usage": _nullable({"type": "boolean"})}}),
            "logprobs": _nullable({"type": "boolean"}),
            "top_logprobs": _nullable({"type": "integer", "minimum": 0, "maximum": 0,
                                       "description": f"only 0 (OpenAI allows up to {MAX_TOP_LOGPROBS}): the "
                                                      "model returns the chosen token's log-probability only"}),
            "presence_penalty": _ZERO_PENALTY,
            "frequency_penalty": _ZERO_PENALTY,
            "logit_bias": _nullable({"type": "object", "maxProperties": 0}),
            "response_format": _nullable({"type": "object", "required": ["type"],
                                          "properties": {"type": {"const": "text"}}}),
            "tools": _nullable({"type": "array", "maxItems": 0}),
            "functions": _nullable({"type": "array", "maxItems": 0}),
            "tool_choice": _nullable({"const": "none"}),
            "function_call": _nullable({"const": "none"}),
        },
    }


_ROUTING: Schema = {
    "type": "object", "description": "confroute's extension: who answered and why",
    "required": ["query_id", "side", "decision", "confidence", "threshold", "policy_version",
                 "escalation_unavailable", "shadow", "latency_ms"],
    "properties": {
        "query_id": {"type": "string"}, "side": {"enum": ["edge", "cloud"]}, "decision": {"type": "string"},
        "confidence": {"type": ["number", "null"]}, "threshold": {"type": ["number", "null"]},
        "policy_version": {"type": "string"}, "escalation_unavailable": {"type": "boolean"},
        "shadow": {"type": "boolean"}, "latency_ms": {"type": "number"},
    },
}
_LOGPROBS: Schema = {
    "type": ["object", "null"],
    "properties": {"content": {"type": "array", "items": {
        "type": "object", "required": ["token", "logprob", "bytes", "top_logprobs"],
        "properties": {"token": {"type": "string"}, "logprob": {"type": "number"},
                       "bytes": {"type": "array", "items": {"type": "integer"}},
                       "top_logprobs": {"type": "array", "maxItems": 0}}}}},
}
_USAGE: Schema = {"type": "object", "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
                  "properties": {k: {"type": "integer", "minimum": 0}
                                 for k in ("prompt_tokens", "completion_tokens", "total_tokens")}}
_MODEL: Schema = {"type": "object", "required": ["id", "object", "created", "owned_by"],
                  "properties": {"id": {"type": "string"}, "object": {"const": "model"},
                                 "created": {"type": "integer"}, "owned_by": {"type": "string"}}}

SCHEMAS: dict[str, Schema] = {
    "Error": {"type": "object", "required": ["error"], "additionalProperties": False, "properties": {"error": {
        "type": "object", "required": ["message", "type", "param", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}},
    "ChatCompletion": {
        "type": "object", "required": ["id", "object", "created", "model", "choices", "usage", "confroute"],
        "properties": {
            "id": {"type": "string"}, "object": {"const": "chat.completion"}, "created": {"type": "integer"},
            "model": {"type": "string"}, "system_fingerprint": {"type": "null"},
            "choices": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                "type": "object", "required": ["index", "message", "logprobs", "finish_reason"],
                "properties": {
                    "index": {"const": 0}, "logprobs": _LOGPROBS,
                    "finish_reason": {"enum": ["stop", "length"]},
                    "message": {"type": "object", "required": ["role", "content"],
                                "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}}},
                }}},
            "usage": _USAGE, "confroute": _ROUTING,
        },
    },
    "ModelList": {"type": "object", "required": ["object", "data"],
                  "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _MODEL}}},
    "Model": _MODEL,
    "FeedbackRequest": {
        "type": "object", "required": ["id", "rating"],
        "properties": {"id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": "\\S",
                              "description": "the answer's query id (X-Confroute-Query-Id)"},
                       "rating": {"enum": ["good", "bad"]}}},
    "Feedback": {"type": "object", "required": ["object", "id", "rating", "status"],
                 "properties": {"object": {"const": "feedback"}, "id": {"type": "string"},
                                "rating": {"enum": ["good", "bad"]}, "status": {"type": "string"}}},
    "Health": {"type": "object", "required": ["status", "models"],
               "properties": {"status": {"const": "ok"}, "models": {"type": "array", "items": {"type": "string"}}}},
}

_EVENT: Schema = {"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}}
_STREAM = ("server-sent events: chat.completion.chunk objects as `data:` lines, then `data: [DONE]`; the "
           "chunk with finish_reason carries the confroute field")

OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", "/v1/chat/completions", "createChatCompletion", "Answer a chat, whole or streamed", {
        200: Reply(f"the answer (JSON), or when `stream` is true its {_STREAM}",
                   {JSON: _ref("ChatCompletion"), SSE: _EVENT},
                   {"X-Request-Id": "the completion id", "X-Confroute-Side": "edge or cloud"}),
        400: ERROR, 404: Reply("no such model", {JSON: _ref("Error")}),
        500: ERROR, 503: RETRY, 504: ERROR,
    }, request=_ref("ChatCompletionRequest")),
    Operation("POST", "/v1/feedback", "createFeedback", "Rate an answer this device gave (its user_feedback label)", {
        200: Reply("the rating is recorded (`status`: `recorded`, or `recorded_not_uploaded` for an answer the "
                   "cloud gave, whose rating is no label of the edge's answer)", {JSON: _ref("Feedback")}),
        400: ERROR, 404: Reply("no answer of this device has that query id", {JSON: _ref("Error")}),
        409: Reply("the query was rated before (the first rating counts)", {JSON: _ref("Error")}),
        501: Reply("this agent takes no feedback", {JSON: _ref("Error")}),
    }, request=_ref("FeedbackRequest")),
    Operation("GET", "/v1/models", "listModels", "The models this device serves",
              {200: Reply("the model list", {JSON: _ref("ModelList")})}),
    Operation("GET", "/v1/models/{model}", "retrieveModel", "One model",
              {200: Reply("the model", {JSON: _ref("Model")}), 404: Reply("no such model", {JSON: _ref("Error")})}),
    Operation("GET", "/health", "health", "Liveness and the models served",
              {200: Reply("serving", {JSON: _ref("Health")})}, tag="operations", authenticated=False),
    Operation("GET", "/metrics", "metrics", "Prometheus metrics (text exposition format)",
              {200: Reply("the metrics", {TEXT: {"type": "string"}})}, tag="operations"),
    Operation("GET", "/openapi.json", "openapi", "This document",
              {200: Reply("the OpenAPI document", {JSON: {"type": "object"}})}, tag="operations"),
)


def openapi_document(model_ids: Sequence[str], version: str, operations: Sequence[Operation] = OPERATIONS
                     ) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the device API serving ``model_ids``."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = op.render()
    return {
        "openapi": "3.1.0",
        "info": {"title": "confroute device API", "version": version,
                 "description": "OpenAI-compatible; see docs/edge-serving.md"},
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, "ChatCompletionRequest": chat_request(model_ids)},
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "only when the server is given an API key"}},
        },
        "security": [{"apiKey": []}, {}],
    }
