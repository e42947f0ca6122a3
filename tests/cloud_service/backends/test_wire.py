"""Triton's messages as wire builds and reads them, checked against the protobuf classes themselves."""

from __future__ import annotations

import pytest
from tritonclient.grpc import service_pb2

from cloud_service.backends.wire import TextCodec, is_final, text_of, with_id
from confroute.contract import ModelRef

InferInputTensor = service_pb2.ModelInferRequest.InferInputTensor
InferOutputTensor = service_pb2.ModelInferResponse.InferOutputTensor


def test_a_request_built_in_two_parts_is_the_request_built_whole() -> None:
    message = with_id(TextCodec("echo", "2").encode("héllo", stream=True, sampling_parameters=b'{"a":1}'), "7f")

    assert service_pb2.ModelInferRequest.FromString(message) == service_pb2.ModelInferRequest(
        model_name="echo",
        model_version="2",
        id="7f",
        inputs=[
            InferInputTensor(name="text_input", datatype="BYTES", shape=[1]),
            InferInputTensor(name="stream", datatype="BOOL", shape=[1]),
            InferInputTensor(name="sampling_parameters", datatype="BYTES", shape=[1]),
            InferInputTensor(name="exclude_input_in_output", datatype="BOOL", shape=[1]),
        ],
        raw_input_contents=[b"\x06\x00\x00\x00h\xc3\xa9llo", b"\x01", b'\x07\x00\x00\x00{"a":1}', b"\x01"],
    )


def response(*raw: bytes, final: bool = False, **fields: object) -> service_pb2.ModelInferResponse:
    message = service_pb2.ModelInferResponse(
        model_name="echo",
        model_version="1",
        outputs=[InferOutputTensor(name="text_output", datatype="BYTES", shape=[len(raw)])] if raw else [],
        raw_output_contents=list(raw),
        **fields,
    )
    if final:
        message.parameters["triton_final_response"].bool_param = True
    return message


def test_the_text_output_elements_are_joined() -> None:
    assert text_of(response(b"\x02\x00\x00\x00ab")) == "ab"
    assert text_of(response(b"\x02\x00\x00\x00ab\x01\x00\x00\x00c")) == "abc"
    assert text_of(response()) == ""


def test_text_sent_as_typed_contents_is_read_too() -> None:
    output = InferOutputTensor(name="text_output", datatype="BYTES", shape=[1])
    output.contents.bytes_contents.append("wörd".encode())

    assert text_of(service_pb2.ModelInferResponse(outputs=[output])) == "wörd"


@pytest.mark.parametrize("raw", [b"\x09\x00\x00\x00short", b"\x01\x00"])
def test_a_malformed_bytes_tensor_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match="overruns"):
        text_of(response(raw))


def test_text_that_is_not_utf8_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        text_of(response(b"\x01\x00\x00\x00\xff"))


def test_only_a_response_flagged_final_is_final() -> None:
    assert is_final(response(final=True))
    assert not is_final(response(b"\x01\x00\x00\x00a"))


def test_the_model_of_a_response_is_named_once_per_model_and_version() -> None:
    codec = TextCodec("echo", "")
    first, second = codec.model_of(response()), codec.model_of(response())

    assert first == ModelRef("echo", "1")
    assert first is second
    assert codec.model_of(service_pb2.ModelInferResponse(model_name="echo")) == ModelRef("echo", "unknown")
