"""A real tritonserver on loopback ports, serving the echo model that speaks the vLLM backend's tensors.

The server's models need an environment with nvidia-pytriton and numpy<2 (its python backend stub is
built against numpy 1.x). Point ``CONFROUTE_TRITON_PYTHON`` at that environment's interpreter, e.g. a
venv made with ``pip install nvidia-pytriton==0.7.0``; by default this interpreter is tried. The client
side needs ``tritonclient[grpc]`` here. Without either, the tests that need them are skipped.
"""

from __future__ import annotations

import json
import os
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cloud_service.inference import TritonServerConfig, TritonServerProcess, probe_backend_environment
from confroute.errors import Unavailable

try:
    import tritonclient.grpc as grpcclient
except ImportError:  # only the tests that talk to the server need the client
    grpcclient = None

REPOSITORY = Path(__file__).resolve().parents[2] / "cloud_service" / "model_repository"
RESPONSE_TIMEOUT_S = 10.0


@pytest.fixture(scope="session")
def backend_python() -> Path:
    configured = os.environ.get("CONFROUTE_TRITON_PYTHON")
    python = Path(configured) if configured else None
    try:
        environment = probe_backend_environment(python)
    except Unavailable as exc:
        pytest.skip(f"{exc} (set CONFROUTE_TRITON_PYTHON)")
    if environment.numpy_version is None or not environment.numpy_version.startswith("1."):
        pytest.skip(f"{environment.python} has numpy {environment.numpy_version}; set CONFROUTE_TRITON_PYTHON")
    return environment.python


@pytest.fixture(scope="session")
def server(backend_python: Path) -> Iterator[TritonServerProcess]:
    config = TritonServerConfig(model_repository=REPOSITORY, backend_python=backend_python)
    with TritonServerProcess(config) as process:
        yield process


@pytest.fixture(scope="session")
def grpc_module() -> Any:
    if grpcclient is None:
        pytest.skip("tritonclient[grpc] is not installed")
    return grpcclient


@pytest.fixture
def client(grpc_module: Any, server: TritonServerProcess) -> Iterator[Any]:
    client = grpc_module.InferenceServerClient(server.endpoints.grpc_url)
    yield client
    client.close()


def generate(client: Any, text: str, **inputs: Any) -> list[str]:
    """Send one request on a gRPC stream (the only way to reach a decoupled model over gRPC)."""
    responses: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    try:
        client.async_stream_infer("echo", echo_inputs(text, **inputs), enable_empty_final_response=True)
        return collect(responses)
    finally:
        client.stop_stream()


def collect(responses: queue.Queue[tuple[Any, Any]]) -> list[str]:
    parts: list[str] = []
    while True:
        result, error = responses.get(timeout=RESPONSE_TIMEOUT_S)
        if error is not None:
            raise error
        text = result.as_numpy("text_output")
        if text is not None:
            parts.extend(item.decode("utf-8") for item in text)
        if result.get_response().parameters["triton_final_response"].bool_param:
            return parts


def echo_inputs(
    text: str,
    *,
    stream: bool | None = None,
    exclude_input_in_output: bool | None = None,
    sampling_parameters: dict[str, Any] | None = None,
) -> list[Any]:
    inputs = [tensor("text_input", np.array([text.encode("utf-8")], dtype=np.object_), "BYTES")]
    if stream is not None:
        inputs.append(tensor("stream", np.array([stream]), "BOOL"))
    if exclude_input_in_output is not None:
        inputs.append(tensor("exclude_input_in_output", np.array([exclude_input_in_output]), "BOOL"))
    if sampling_parameters is not None:
        encoded = json.dumps(sampling_parameters).encode("utf-8")
        inputs.append(tensor("sampling_parameters", np.array([encoded], dtype=np.object_), "BYTES"))
    return inputs


def tensor(name: str, value: np.ndarray[Any, Any], datatype: str) -> Any:
    infer_input = grpcclient.InferInput(name, list(value.shape), datatype)
    infer_input.set_data_from_numpy(value)
    return infer_input


def test_a_non_streaming_request_gets_the_text_back_in_one_response(client: Any) -> None:
    parts = generate(client, "héllo wörld, how are you?", stream=False, exclude_input_in_output=True)

    assert parts == ["héllo wörld, how are you?"]


def test_a_non_streaming_request_gets_the_prompt_prepended_by_default_like_vllm(client: Any) -> None:
    assert generate(client, "one two") == ["one twoone two"]


def test_a_streaming_request_gets_one_partial_response_per_word(client: Any) -> None:
    text = "the quick  brown fox jumps "

    parts = generate(client, text, stream=True)

    assert parts == ["the", " quick", "  brown", " fox", " jumps "]
    assert "".join(parts) == text


def test_max_tokens_in_sampling_parameters_caps_the_words(client: Any) -> None:
    parts = generate(client, "a b c d e", stream=True, sampling_parameters={"max_tokens": 2, "temperature": 0})

    assert parts == ["a", " b"]


def test_streaming_with_the_prompt_included_is_refused_like_vllm(client: Any) -> None:
    with pytest.raises(grpcclient.InferenceServerException, match="exclude_input_in_output"):
        generate(client, "a b", stream=True, exclude_input_in_output=False)


def test_the_server_reports_its_models_over_grpc(client: Any) -> None:
    assert client.is_server_ready()
    assert client.is_model_ready("echo")
    config = client.get_model_config("echo", as_json=True)["config"]
    assert config["model_transaction_policy"]["decoupled"] is True


def test_stopping_leaves_no_process_and_no_shared_memory(backend_python: Path) -> None:
    process = TritonServerProcess(TritonServerConfig(REPOSITORY, backend_python=backend_python))
    process.start()
    pid = process.pid
    prefix = process._shm_prefix  # this server's regions only: other servers may run beside the test
    assert pid is not None and process.running
    assert prefix and any(name.startswith(prefix) for name in os.listdir("/dev/shm"))

    process.stop()

    assert not process.running
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # nothing left in its process group: no orphaned backend stubs
    assert not [name for name in os.listdir("/dev/shm") if name.startswith(prefix)]


def test_a_missing_model_repository_is_unavailable(tmp_path: Path) -> None:
    config = TritonServerConfig(model_repository=tmp_path / "nowhere")

    with pytest.raises(Unavailable, match="nowhere"):
        TritonServerProcess(config).start()


def test_a_model_that_fails_to_load_makes_the_server_unavailable(tmp_path: Path, backend_python: Path) -> None:
    model = tmp_path / "broken" / "1"
    model.mkdir(parents=True)
    (tmp_path / "broken" / "config.pbtxt").write_text('backend: "python"\n')
    (model / "model.py").write_text("raise RuntimeError('cannot load')\n")
    process = TritonServerProcess(TritonServerConfig(tmp_path, backend_python=backend_python))

    with pytest.raises(Unavailable, match="exited with code"):
        process.start()
    assert not process.running
