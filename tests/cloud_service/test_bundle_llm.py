"""The bundle_llm model in a real tritonserver: a confroute bundle served with the vLLM backend's tensors.

A tiny random bundle answers exactly what the engine answers in this process for the same prompt and
parameters, streamed or not, through tritonclient's streaming gRPC API and through ``TritonBackend``.
The models' environment is ``CONFROUTE_TRITON_PYTHON`` (nvidia-pytriton, numpy<2, plus onnxruntime,
tokenizers, jinja2 and confroute, as ``scripts/setup.sh`` installs); without it these tests are skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cloud_service.backends.prompt import render_prompt
from cloud_service.backends.triton import TritonBackend, TritonBackendConfig
from cloud_service.inference import TritonServerConfig, TritonServerProcess
from cloud_service.inference.repository import SHIPPED_REPOSITORY, BundleModel, model_config, write_repository
from confroute.contract import (
    ChatMessage,
    ChatRole,
    EscalationRequest,
    GenerationParams,
    ModelRef,
    RoutingMode,
    TokenDelta,
)
from confroute.engine import Engine, SamplingParams
from confroute.errors import BundleNotFound, RuntimeFailure, Unavailable
from tests.harness import triton_python_or_skip

grpcclient = pytest.importorskip("tritonclient.grpc")

MODEL = "bundle_llm"
TIMEOUT_S = 30.0
PROMPT = "<|im_start|>user\nWhat is two plus two?<|im_end|>\n<|im_start|>assistant\n"
_NEEDS = "import confroute.engine, onnxruntime, tokenizers, jinja2"


@pytest.fixture(scope="module")
def backend_python() -> Path:
    python = triton_python_or_skip()
    if subprocess.run([str(python), "-c", _NEEDS], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"{python} lacks onnxruntime, tokenizers, jinja2 or confroute: run scripts/setup.sh")
    return python


@pytest.fixture(scope="module")
def bundle(tiny_bundles: dict[str, Path]) -> Path:
    return tiny_bundles["qwen2"]


@pytest.fixture(scope="module")
def triton(backend_python: Path, bundle: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServerProcess]:
    repository = write_repository(tmp_path_factory.mktemp("models"), bundle, include_echo=True)
    with TritonServerProcess(TritonServerConfig(repository, backend_python=backend_python)) as process:
        yield process


@pytest.fixture
def client(triton: TritonServerProcess) -> Iterator[Any]:
    client = grpcclient.InferenceServerClient(triton.endpoints.grpc_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def engine(bundle: Path) -> Engine:
    return Engine(bundle)


def expected(engine: Engine, prompt: str = PROMPT, **params: Any) -> str:
    """What the engine in this process generates for the prompt rendered as the model tokenizes it."""
    ids = engine.tokenizer.encode(prompt, add_special_tokens=False).ids
    return engine.generate(ids, SamplingParams(**params)).text


def generate(client: Any, text: str = PROMPT, model: str = MODEL, **inputs: Any) -> list[str]:
    """One request on a gRPC stream (decoupled models accept no other); every response's text, in order."""
    responses: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    try:
        client.async_stream_infer(model, request_inputs(text, **inputs))
        return collect(responses)
    finally:
        client.stop_stream()


def collect(responses: queue.Queue[tuple[Any, Any]]) -> list[str]:
    parts: list[str] = []
    while True:
        result, error = responses.get(timeout=TIMEOUT_S)
        if error is not None:
            raise error
        parts.extend(item.decode("utf-8") for item in result.as_numpy("text_output"))
        if result.get_response().parameters["triton_final_response"].bool_param:
            return parts


def request_inputs(text: str, *, stream: bool | None = None, exclude_input_in_output: bool | None = None,
                   sampling_parameters: dict[str, Any] | str | None = None) -> list[Any]:
    inputs = [tensor("text_input", np.array([text.encode("utf-8")], dtype=np.object_), "BYTES")]
    if stream is not None:
        inputs.append(tensor("stream", np.array([stream]), "BOOL"))
    if exclude_input_in_output is not None:
        inputs.append(tensor("exclude_input_in_output", np.array([exclude_input_in_output]), "BOOL"))
    if sampling_parameters is not None:
        raw = sampling_parameters if isinstance(sampling_parameters, str) else json.dumps(sampling_parameters)
        inputs.append(tensor("sampling_parameters", np.array([raw.encode("utf-8")], dtype=np.object_), "BYTES"))
    return inputs


def tensor(name: str, value: np.ndarray[Any, Any], datatype: str) -> Any:
    infer_input = grpcclient.InferInput(name, list(value.shape), datatype)
    infer_input.set_data_from_numpy(value)
    return infer_input


def greedy(max_tokens: int = 12, **extra: Any) -> dict[str, Any]:
    return {"max_tokens": max_tokens, "temperature": 0, **extra}


def test_a_non_streaming_request_gets_the_engines_generation_in_one_response(client: Any, engine: Engine) -> None:
    parts = generate(client, stream=False, exclude_input_in_output=True, sampling_parameters=greedy())

    assert parts == [expected(engine, max_new_tokens=12)]
    assert parts[0]


def test_a_streaming_request_gets_the_same_text_as_deltas_then_an_empty_final_response(
        client: Any, engine: Engine) -> None:
    parts = generate(client, stream=True, sampling_parameters=greedy())

    assert "".join(parts) == expected(engine, max_new_tokens=12)
    assert len(parts) > 2
    assert all(parts[:-1]) and parts[-1] == ""


def test_a_non_streaming_request_gets_the_prompt_prepended_by_default_like_vllm(client: Any, engine: Engine) -> None:
    assert generate(client, sampling_parameters=greedy()) == [PROMPT + expected(engine, max_new_tokens=12)]


def test_max_tokens_caps_the_generated_tokens(client: Any, engine: Engine) -> None:
    ids = engine.tokenizer.encode(PROMPT, add_special_tokens=False).ids
    reference = engine.generate(ids, SamplingParams(max_new_tokens=3, ignore_eos=True))

    parts = generate(client, stream=True, sampling_parameters=greedy(3, ignore_eos=True))

    assert reference.completion_tokens == 3
    assert "".join(parts) == reference.text


def test_without_max_tokens_the_vllm_default_of_16_applies(client: Any, engine: Engine) -> None:
    text = generate(client, exclude_input_in_output=True, sampling_parameters={"temperature": 0, "ignore_eos": True})

    assert text == [expected(engine, max_new_tokens=16, ignore_eos=True)]


def test_seeded_sampling_is_reproducible_and_matches_the_engine(client: Any, engine: Engine) -> None:
    params = {"max_tokens": 10, "temperature": 0.9, "top_p": 0.95, "seed": 7}

    first = generate(client, stream=True, sampling_parameters=params)
    second = generate(client, stream=True, sampling_parameters=params)

    assert "".join(first) == "".join(second)
    assert "".join(first) == expected(engine, max_new_tokens=10, temperature=0.9, top_p=0.95, seed=7)


def test_a_stop_string_ends_the_text_before_it(client: Any, engine: Engine) -> None:
    full = expected(engine, max_new_tokens=12)
    stop = full[len(full) // 2:][:2]

    parts = generate(client, stream=True, sampling_parameters=greedy(stop=[stop]))

    assert "".join(parts) == full[: full.index(stop)]


@pytest.mark.parametrize(
    ("sampling_parameters", "message"),
    [
        ({"max_tokens": 0}, "max_new_tokens must be >= 1"),
        ({"max_tokens": "many"}, "max_tokens must be a number"),
        ({"max_tokens": 2.5}, "max_tokens must be an integer"),
        ({"temperature": -1}, "temperature must be"),
        ({"top_p": 0}, "top_p must be in"),
        ({"stop": [1]}, "stop must be a string or a list"),
        ({"best_of": 2}, "unsupported sampling parameters"),
        ("{not json", "not valid JSON"),
        ({"max_tokens": 1000}, "model context is 256 tokens"),
    ],
)
def test_bad_sampling_parameters_get_an_invalid_argument_error(
        client: Any, sampling_parameters: dict[str, Any] | str, message: str) -> None:
    with pytest.raises(grpcclient.InferenceServerException, match=message):
        generate(client, stream=True, sampling_parameters=sampling_parameters)


def test_streaming_with_the_prompt_included_is_refused_like_vllm(client: Any) -> None:
    with pytest.raises(grpcclient.InferenceServerException, match="exclude_input_in_output"):
        generate(client, stream=True, exclude_input_in_output=False)


def test_an_empty_prompt_is_refused_and_the_model_keeps_serving(client: Any) -> None:
    with pytest.raises(grpcclient.InferenceServerException, match="prompt is empty"):
        generate(client, "", stream=True)

    assert generate(client, stream=True, sampling_parameters=greedy(2))


def test_the_echo_model_is_served_next_to_the_bundle(client: Any) -> None:
    assert generate(client, "one two", model="echo", stream=True) == ["one", " two"]
    assert client.get_model_config(MODEL, as_json=True)["config"]["model_transaction_policy"]["decoupled"] is True


def escalation(text: str, max_tokens: int, **params: Any) -> EscalationRequest:
    return EscalationRequest(
        query_id="q-1", device_id="device-1", cohort="beta", edge_model=ModelRef("smollm2-135m-instruct", "b1"),
        messages=(ChatMessage(ChatRole.USER, text),), params=GenerationParams(max_tokens=max_tokens, **params),
        mode=RoutingMode.PRE,
    )


def through_backend(url: str, request: EscalationRequest, stream: bool) -> list[Any]:
    async def scenario() -> list[Any]:
        backend = await TritonBackend.create(TritonBackendConfig(url=url, model=MODEL, prompt_format="chatml"))
        try:
            if stream:
                return [event async for event in backend.stream(request, TIMEOUT_S)]
            return [await backend.generate(request, TIMEOUT_S)]
        finally:
            await backend.close()

    return asyncio.run(scenario())


def test_triton_backend_gets_the_engines_answer_to_its_chatml_prompt(triton: TritonServerProcess,
                                                                      engine: Engine) -> None:
    request = escalation("What is two plus two?", max_tokens=8, temperature=0.0)
    prompt = render_prompt(request.messages, "chatml")

    [answer] = through_backend(triton.endpoints.grpc_url, request, stream=False)

    assert answer.text == expected(engine, prompt, max_new_tokens=8)
    assert answer.model == ModelRef(MODEL, "1")


def test_triton_backend_streams_token_deltas_then_the_final_answer(triton: TritonServerProcess,
                                                                   engine: Engine) -> None:
    request = escalation("Tell me about Paris.", max_tokens=8, temperature=0.0)

    *deltas, final = through_backend(triton.endpoints.grpc_url, request, stream=True)

    assert all(isinstance(delta, TokenDelta) for delta in deltas)
    assert "".join(delta.text for delta in deltas) == final.text
    assert final.text == expected(engine, render_prompt(request.messages, "chatml"), max_new_tokens=8)


def test_triton_backend_reports_a_bad_request_as_a_runtime_failure(triton: TritonServerProcess) -> None:
    request = escalation("What is two plus two?", max_tokens=1000, temperature=0.0)

    with pytest.raises(RuntimeFailure, match="model context is 256 tokens"):
        through_backend(triton.endpoints.grpc_url, request, stream=True)


def test_the_shipped_repository_loads_and_its_unconfigured_bundle_model_answers_unavailable(
        backend_python: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFROUTE_TRITON_BUNDLE", raising=False)
    with TritonServerProcess(TritonServerConfig(SHIPPED_REPOSITORY, backend_python=backend_python)) as process:
        client = grpcclient.InferenceServerClient(process.endpoints.grpc_url)
        try:
            with pytest.raises(grpcclient.InferenceServerException, match="no bundle configured"):
                generate(client, stream=True)
        finally:
            client.close()


def test_a_bundle_that_fails_its_checks_makes_the_server_unavailable(
        backend_python: Path, bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "bundle"
    broken.mkdir()
    for item in bundle.iterdir():
        (broken / item.name).symlink_to(item)
    (broken / "tokenizer.json").unlink()
    (broken / "tokenizer.json").write_text("{}", encoding="utf-8")
    repository = write_repository(tmp_path / "models", broken)

    with pytest.raises(Unavailable, match="cannot load bundle"):
        TritonServerProcess(TritonServerConfig(repository, backend_python=backend_python)).start()


def test_write_repository_refuses_a_folder_without_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFound, match="no confroute bundle"):
        write_repository(tmp_path / "models", tmp_path)


def test_the_generated_config_names_the_bundle_threads_and_instances(bundle: Path) -> None:
    config = model_config(BundleModel(bundle, threads=3, instances=2, verify=False), Path('/opt/my "odd" bundle'))

    assert 'key: "bundle"\n  value: { string_value: "/opt/my \\"odd\\" bundle" }' in config
    assert 'string_value: "3"' in config and 'string_value: "false"' in config
    assert "count: 2" in config and "count: 1" not in config


@pytest.mark.real_model
@pytest.mark.slow
def test_the_cloud_model_answers_twelve_times_seven_through_triton(backend_python: Path, tmp_path: Path) -> None:
    from confroute.modelkit.cloud_model import ensure_cloud_bundle
    from confroute.paths import cache_dir

    bundle = ensure_cloud_bundle(cache_dir(os.environ), lambda _message: None)  # cached after the first build
    config = TritonServerConfig(write_repository(tmp_path, bundle), backend_python=backend_python,
                                startup_timeout_s=180.0)
    request = escalation("What is 12 times 7?", max_tokens=48)

    with TritonServerProcess(config) as process:
        *deltas, answer = through_backend(process.endpoints.grpc_url, request, stream=True)

    assert "84" in answer.text
    assert len(deltas) > 3


def test_a_relative_bundle_path_is_taken_from_the_models_folder(
        backend_python: Path, bundle: Path, tmp_path: Path, engine: Engine) -> None:
    model = write_repository(tmp_path, bundle) / MODEL
    (model / "weights").symlink_to(bundle, target_is_directory=True)
    config = model / "config.pbtxt"
    config.write_text(config.read_text().replace(json.dumps(str(bundle.resolve())), '"weights"'))
    assert str(bundle.resolve()) not in config.read_text()

    with TritonServerProcess(TritonServerConfig(tmp_path, backend_python=backend_python)) as process:
        client = grpcclient.InferenceServerClient(process.endpoints.grpc_url)
        try:
            parts = generate(client, stream=True, sampling_parameters=greedy())
        finally:
            client.close()

    assert "".join(parts) == expected(engine, max_new_tokens=12)
