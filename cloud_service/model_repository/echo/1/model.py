"""An echo model that speaks the tensor interface of Triton's vLLM backend.

It "generates" the words of ``text_input``, so tests and local runs exercise the same request and
response shapes as a real LLM served by the vLLM backend:

- ``stream`` (default false): one response per word, each carrying only the new text (a delta), the last
  one flagged final; otherwise a single final response.
- ``exclude_input_in_output``: as in the vLLM backend, when absent it is true for streaming requests and
  false otherwise, so a plain non-streaming request gets the prompt prepended to the generated text;
  asking for the prompt while streaming is an error.
- ``sampling_parameters`` (JSON, falling back to the request parameters like the vLLM backend):
  ``max_tokens`` caps the number of words. Without it the whole input comes back (vLLM would stop at 16).

It runs inside Triton's python backend stub, not in confroute's interpreter: only numpy and the stdlib.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]  # the stub provides it

# Leading whitespace stays with the word it precedes, trailing whitespace with the last word, so the
# chunks concatenate back to the input exactly.
_WORD = re.compile(r"\s*\S+(?:\s+$)?")


class TritonPythonModel:
    """Triton's entry point for a python-backend model."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(config):
            raise pb_utils.TritonModelException("the echo model must be configured as decoupled")

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            sender = request.get_response_sender()
            try:
                chunks, stream = _plan(request)
            except ValueError as exc:
                error = pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG)
                sender.send(pb_utils.InferenceResponse(error=error), flags=_FINAL)
                continue
            _send(sender, chunks, stream)

    def finalize(self) -> None:
        """Nothing to release."""


_FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


def _plan(request: Any) -> tuple[list[str], bool]:
    """The text pieces to send, in order, and whether to send them as separate responses."""
    prompt = _scalar(request, "text_input")
    if not isinstance(prompt, bytes):
        raise ValueError("text_input must be a BYTES tensor holding one UTF-8 string")
    text = prompt.decode("utf-8")
    stream = bool(_scalar(request, "stream", default=False))
    prepend = _prepend_input(request, stream)
    words = _WORD.findall(text)[: _max_tokens(request)]
    if prepend:
        return [text + "".join(words)], stream
    return words, stream


def _prepend_input(request: Any, stream: bool) -> bool:
    """The vLLM backend's rule for ``exclude_input_in_output``."""
    exclude = _scalar(request, "exclude_input_in_output", default=None)
    prepend = not stream if exclude is None else not bool(exclude)
    if prepend and stream:
        raise ValueError("When streaming, `exclude_input_in_output` = False is not allowed.")
    return prepend


def _max_tokens(request: Any) -> int | None:
    raw = _scalar(request, "sampling_parameters", default=None)
    text = raw.decode("utf-8") if isinstance(raw, bytes) else request.parameters()
    try:
        parameters = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"sampling_parameters is not valid JSON: {exc}") from exc
    max_tokens = parameters.get("max_tokens") if isinstance(parameters, dict) else None
    if max_tokens is None:
        return None
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    return max_tokens


def _scalar(request: Any, name: str, default: Any = None) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return default
    values = tensor.as_numpy().reshape(-1)
    if values.size != 1:
        raise ValueError(f"{name} must hold exactly one element, got {values.size}")
    return values[0]


def _send(sender: Any, chunks: list[str], stream: bool) -> None:
    if not stream:
        sender.send(_response("".join(chunks)), flags=_FINAL)
        return
    if not chunks:
        sender.send(_response(""), flags=_FINAL)
        return
    for chunk in chunks[:-1]:
        sender.send(_response(chunk))
    sender.send(_response(chunks[-1]), flags=_FINAL)


def _response(text: str) -> Any:
    tensor = pb_utils.Tensor("text_output", np.array([text.encode("utf-8")], dtype=np.object_))
    return pb_utils.InferenceResponse(output_tensors=[tensor])
