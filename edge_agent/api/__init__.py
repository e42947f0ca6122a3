"""The edge agent's OpenAI-compatible HTTP API, so that any OpenAI client can point at the device.

    POST /v1/chat/completions   with and without "stream": true (server-sent events, then [DONE])
    GET  /v1/models             the answerer's model ids (and GET /v1/models/{id})
    GET  /health                {"status": "ok", "models": [...]} (HEAD too, as on every GET route)
    GET  /metrics               Prometheus text format (see :mod:`edge_agent.api.metrics`)
    GET  /openapi.json          this API's OpenAPI 3.1 document (see :mod:`edge_agent.api.spec`)

Routing metadata (which side answered, the confidence, the policy version):

* body: ``"confroute": AgentAnswer.routing()`` on the ``chat.completion`` object, and on the stream
  chunk carrying ``finish_reason`` (and on the usage chunk, with ``stream_options.include_usage``);
  ``model`` names the model that answered (the cloud's when it did);
* headers: ``X-Confroute-Side``, ``X-Confroute-Confidence`` (absent when no decision was made, e.g. a
  privacy veto), ``X-Confroute-Policy-Version``, ``X-Confroute-Query-Id``, and ``X-Request-Id`` (the
  completion id). A stream's headers leave before the answer is known: they carry only
  ``X-Confroute-Side`` of the first text (the side that began answering) and ``X-Request-Id``; the final
  chunk's ``confroute`` field is authoritative.

Every request field is honoured or refused with a 400 naming it (:mod:`edge_agent.api.request`). Errors
have OpenAI's shape and status codes (:mod:`edge_agent.api.errors`); a full admission queue is a 429 with
``Retry-After``. Served by uvicorn and starlette (:mod:`edge_agent.api.server`); docs/edge-serving.md.
"""

from edge_agent.api.server import ApiConfig, ApiServer, serve_api

__all__ = ["ApiConfig", "ApiServer", "serve_api"]
