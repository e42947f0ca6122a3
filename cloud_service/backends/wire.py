"""Triton's gRPC messages for the vLLM-style text interface, built and read without numpy.

tritonclient's ``InferInput`` and ``InferResult`` pass every tensor through numpy; for one string in and
one string out that costs more CPU than the rest of an escalation. Here the KServe v2 messages of
``tritonclient.grpc.service_pb2`` are built and read directly.

A request is serialized in two parts that protobuf merges by concatenation (repeated fields append,
scalar fields take the last value): a head fixed per backend (model name and version, the four input
tensors' names, types and shapes), serialized once, and a tail per request (the tensors' raw contents,
then the request id). ``BYTES`` tensors are raw-encoded as Triton expects them: each element a
little-endian uint32 length, then its bytes; ``BOOL`` elements one byte each.
"""

from __future__ import annotations

from typing import Any

from tritonclient.grpc import service_pb2

from confroute.contract.common import ModelRef

STREAM_METHOD = "/inference.GRPCInferenceService/ModelStreamInfer"
FINAL_PARAMETER = "triton_final_response"
TEXT_OUTPUT = "text_output"
_INPUTS = (
    ("text_input", "BYTES"),
    ("stream", "BOOL"),
    ("sampling_parameters", "BYTES"),
    ("exclude_input_in_output", "BOOL"),
)
_TRUE, _FALSE = b"\x01", b"\x00"


class TextCodec:
    """Requests to one model, serialized as the module docstring says, and what its responses name."""

    def __init__(self, model: str, model_version: str) -> None:
        inputs = [service_pb2.ModelInferRequest.InferInputTensor(name=n, datatype=t, shape=[1]) for n, t in _INPUTS]
        head = service_pb2.ModelInferRequest(model_name=model, model_version=model_version, inputs=inputs)
        self._head: bytes = head.SerializeToString()
        self._models: dict[tuple[str, str], ModelRef] = {}

    def encode(self, prompt: str, *, stream: bool, sampling_parameters: bytes) -> bytes:
        """The request without its id: ``text_input``, ``stream``, ``sampling_parameters`` and
        ``exclude_input_in_output`` = true (a request is complete only after :func:`with_id`)."""
        contents = (_element(prompt.encode("utf-8")), _TRUE if stream else _FALSE, _element(sampling_parameters), _TRUE)
        tail: bytes = service_pb2.ModelInferRequest(raw_input_contents=contents).SerializeToString()
        return self._head + tail

    def model_of(self, response: Any) -> ModelRef:
        """The model that sent ``response`` (a ``ModelInferResponse``), one object per model and version."""
        key = (response.model_name, response.model_version)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = ModelRef(key[0], key[1] or "unknown")
        return model


def with_id(request: bytes, request_id: str) -> bytes:
    """``request`` (a serialized ``ModelInferRequest``) with its ``id`` set."""
    tail: bytes = service_pb2.ModelInferRequest(id=request_id).SerializeToString()
    return request + tail


def decode_stream_response(message: bytes) -> Any:
    """A ``ModelStreamInferResponse`` from the wire."""
    return service_pb2.ModelStreamInferResponse.FromString(message)


def is_final(response: Any) -> bool:
    """Whether ``response`` (a ``ModelInferResponse``) is the last one of its request."""
    parameter = response.parameters.get(FINAL_PARAMETER)
    return parameter is not None and bool(parameter.bool_param)


def text_of(response: Any) -> str:
    """The ``text_output`` elements of ``response`` joined, "" when it has none (a bare final flag).

    Raises ``UnicodeDecodeError`` for text that is not UTF-8 and ``ValueError`` for a malformed tensor.
    """
    for index, output in enumerate(response.outputs):
        if output.name != TEXT_OUTPUT:
            continue
        if output.datatype != "BYTES":
            raise ValueError(f"{TEXT_OUTPUT} is a {output.datatype} tensor, expected BYTES")
        if index < len(response.raw_output_contents):
            return "".join(item.decode("utf-8") for item in _elements(response.raw_output_contents[index]))
        return "".join(item.decode("utf-8") for item in output.contents.bytes_contents)
    return ""


def _element(value: bytes) -> bytes:
    return len(value).to_bytes(4, "little") + value


def _elements(raw: bytes) -> list[bytes]:
    """The elements of a raw-encoded BYTES tensor."""
    items, offset, end = [], 0, len(raw)
    while offset < end:
        size = int.from_bytes(raw[offset : offset + 4], "little")
        start, offset = offset + 4, offset + 4 + size
        if offset > end or start > end:
            raise ValueError(f"a BYTES element of {size} bytes overruns its tensor of {end} bytes")
        items.append(raw[start:offset])
    return items
