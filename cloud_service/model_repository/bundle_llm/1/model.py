"""Serves any confroute model bundle with onnxruntime, speaking the tensor interface of Triton's vLLM backend.

Contract (the same as the echo model's and the vLLM backend's, so one client serves all three):

- ``text_input``: the prompt, *already rendered* by the client (``TritonBackend`` sends the chat in
  ChatML, see ``cloud_service/backends/prompt.py``). It is tokenized as-is with
  ``add_special_tokens=False``: special tokens written in the text (``<|im_start|>``) become special
  tokens, exactly as when the bundle's own chat template renders a chat. The bundle's template is not
  applied here; a bundle trained on another chat format needs a client that renders that format.
- ``stream`` (default false): one response per decoded text delta (empty deltas, held back for a stop
  string or an incomplete UTF-8 character, are not sent), then an empty response flagged final (as
  vLLM's last response is when it stops at EOS). Otherwise one final response with the whole text.
- ``exclude_input_in_output``: when absent, true for streaming and false otherwise (vLLM's rule), so a
  plain non-streaming request gets the prompt prepended; asking for the prompt while streaming is an error.
- ``sampling_parameters`` (JSON object; without the tensor, the request parameters): ``max_tokens``
  (default 16), ``temperature`` (default 1.0; 0 is greedy), ``top_p`` (default 1.0), ``seed``, ``stop``
  (a string or a list), ``ignore_eos``, with vLLM's defaults and its coercion of numeric strings. Any
  other key is rejected rather than silently ignored.

Errors never crash the model: bad input is answered with an ``INVALID_ARG`` Triton error, a missing bundle
with ``UNAVAILABLE``, a cancelled request with ``CANCELLED`` (checked after every token) and anything else
with ``INTERNAL``, each as the request's final response.

Configuration (model config ``parameters``): ``bundle`` -- the bundle folder, relative paths taken from the
model's folder; if empty, the environment variable ``CONFROUTE_TRITON_BUNDLE``. With neither, the model
loads but answers every request with ``UNAVAILABLE``: the shipped repository holds this model as a
template next to the echo model, and ``cloud_service.inference.repository.write_repository`` generates a
repository with the bundle filled in. ``threads`` -- onnxruntime intra-op threads (default 2);
``verify`` -- check the bundle's sha256 sums on load (default true).

Concurrency: the engine is not thread-safe, so each instance runs one request at a time (the python
backend calls ``execute`` once at a time per instance); add instances in ``instance_group`` to serve
requests in parallel, each with its own copy of the weights.

It runs inside Triton's python backend stub, in the models' environment (numpy<2), which needs
onnxruntime, tokenizers, jinja2 and the confroute package (``scripts/setup.sh`` installs them there).
confroute is imported only when a bundle is configured, so the unconfigured template loads without it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]  # the stub provides it

if TYPE_CHECKING:
    from confroute.engine import Engine, SamplingParams
    from confroute.engine.engine import GenerationRun

BUNDLE_ENV = "CONFROUTE_TRITON_BUNDLE"
_FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
# vLLM's defaults for what a request leaves out.
_DEFAULT_MAX_TOKENS = 16
_DEFAULT_TEMPERATURE = 1.0
_SUPPORTED = frozenset({"max_tokens", "temperature", "top_p", "seed", "stop", "ignore_eos"})


class BadRequest(Exception):
    """A request this model cannot accept (answered with INVALID_ARG)."""


class Cancelled(Exception):
    """The client cancelled the request while it was being generated."""


class NotConfigured(Exception):
    """No bundle is configured (answered with UNAVAILABLE)."""


@dataclass(frozen=True)
class Settings:
    """The model's configuration, read once from its config parameters and environment."""

    bundle: Path | None
    threads: int
    verify: bool


@dataclass(frozen=True)
class Job:
    """One parsed request."""

    prompt: str
    stream: bool
    prepend_prompt: bool
    params: SamplingParams


class TritonPythonModel:
    """Triton's entry point for a python-backend model."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(config):
            raise pb_utils.TritonModelException("the bundle_llm model must be configured as decoupled")
        settings = read_settings(config, Path(args["model_repository"]), os.environ)
        self._engine: Engine | None = None if settings.bundle is None else load_engine(settings)
        if self._engine is None:
            pb_utils.Logger.log_warn(f"bundle_llm: no bundle configured (parameter 'bundle' or ${BUNDLE_ENV}); "
                                     "every request will be answered with UNAVAILABLE")
        else:
            pb_utils.Logger.log_info(f"bundle_llm: serving {self._engine.manifest.model_id} from "
                                     f"{settings.bundle} with {settings.threads} threads")

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            sender = request.get_response_sender()
            try:
                self._serve(request, sender)
            except Exception as exc:  # every failure becomes the request's final (error) response
                _send_error(sender, exc)

    def finalize(self) -> None:
        """Drops the engine (its onnxruntime session and KV buffers)."""
        self._engine = None

    def _serve(self, request: Any, sender: Any) -> None:
        if self._engine is None:
            raise NotConfigured(f"no bundle configured: set the model parameter 'bundle' or ${BUNDLE_ENV}")
        job = parse_request(request)
        run = start(self._engine, job)
        if job.stream:
            for event in run:
                _check_cancelled(request)
                if event.text:
                    sender.send(_response(event.text))
            sender.send(_response(""), flags=_FINAL)
            return
        for _ in run:
            _check_cancelled(request)
        text = run.result.text
        sender.send(_response(job.prompt + text if job.prepend_prompt else text), flags=_FINAL)


def start(engine: Engine, job: Job) -> GenerationRun:
    """Tokenizes the rendered prompt as-is and prefills it; an empty or too long prompt is a bad request."""
    from confroute.errors import InvalidInput

    ids = engine.tokenizer.encode(job.prompt, add_special_tokens=False).ids
    try:
        return engine.start(ids, job.params)
    except InvalidInput as exc:
        raise BadRequest(str(exc)) from exc


def read_settings(config: dict[str, Any], model_dir: Path, env: Mapping[str, str]) -> Settings:
    """The bundle folder (parameter, else environment; relative to the model's folder), threads, verify."""
    parameters = config.get("parameters") or {}

    def parameter(name: str) -> str:
        return str((parameters.get(name) or {}).get("string_value", "")).strip()

    raw = parameter("bundle") or str(env.get(BUNDLE_ENV, "")).strip()
    bundle = (model_dir / Path(raw).expanduser()) if raw else None
    threads_text = parameter("threads") or "2"
    if not threads_text.isdigit() or int(threads_text) < 1:
        raise pb_utils.TritonModelException(f"parameter 'threads' must be a positive integer, got {threads_text!r}")
    verify = parameter("verify").lower() not in ("false", "0", "no")
    return Settings(bundle=bundle, threads=int(threads_text), verify=verify)


def load_engine(settings: Settings) -> Engine:
    """The bundle's engine; any failure to load it fails the model's load with a clear message."""
    from confroute.engine import Engine, RuntimeOptions
    from confroute.errors import ConfrouteError

    assert settings.bundle is not None
    try:
        return Engine(settings.bundle, RuntimeOptions(intra_op_threads=settings.threads), verify=settings.verify)
    except ConfrouteError as exc:
        raise pb_utils.TritonModelException(f"cannot load bundle {settings.bundle}: {exc}") from exc


def parse_request(request: Any) -> Job:
    """The request's prompt, streaming mode and sampling parameters, validated."""
    prompt = _scalar(request, "text_input")
    if not isinstance(prompt, bytes):
        raise BadRequest("text_input must be a BYTES tensor holding one UTF-8 string")
    try:
        text = prompt.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"text_input is not valid UTF-8: {exc}") from exc
    stream = bool(_scalar(request, "stream", default=False))
    return Job(text, stream, _prepend_input(request, stream), sampling_params(_sampling_json(request)))


def _prepend_input(request: Any, stream: bool) -> bool:
    """The vLLM backend's rule for ``exclude_input_in_output``."""
    exclude = _scalar(request, "exclude_input_in_output", default=None)
    prepend = not stream if exclude is None else not bool(exclude)
    if prepend and stream:
        raise BadRequest("When streaming, `exclude_input_in_output` = False is not allowed.")
    return prepend


def _sampling_json(request: Any) -> dict[str, Any]:
    raw = _scalar(request, "sampling_parameters", default=None)
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else request.parameters()
    try:
        values = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise BadRequest(f"sampling_parameters is not valid JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise BadRequest("sampling_parameters must be a JSON object")
    return values


def sampling_params(values: dict[str, Any]) -> SamplingParams:
    """Engine parameters from vLLM-style sampling parameters (defaults and numeric strings as in vLLM)."""
    from confroute.engine import SamplingParams
    from confroute.errors import InvalidInput

    unknown = sorted(set(values) - _SUPPORTED)
    if unknown:
        raise BadRequest(f"unsupported sampling parameters {unknown}; this model supports {sorted(_SUPPORTED)}")
    try:
        return SamplingParams(
            max_new_tokens=_integer(values.get("max_tokens", _DEFAULT_MAX_TOKENS), "max_tokens"),
            temperature=_number(values.get("temperature", _DEFAULT_TEMPERATURE), "temperature"),
            top_p=_number(values.get("top_p", 1.0), "top_p"),
            seed=None if values.get("seed") is None else _integer(values["seed"], "seed"),
            stop=_stops(values.get("stop")),
            ignore_eos=bool(values.get("ignore_eos", False)),
        )
    except InvalidInput as exc:
        raise BadRequest(str(exc)) from exc


def _number(value: Any, name: str) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number):
        raise BadRequest(f"{name} must be a number, got {value!r}")
    return number


def _integer(value: Any, name: str) -> int:
    number = _number(value, name)
    if not number.is_integer():
        raise BadRequest(f"{name} must be an integer, got {value!r}")
    return int(number)


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise BadRequest(f"stop must be a string or a list of strings, got {value!r}")
    return tuple(stops)


def _scalar(request: Any, name: str, default: Any = None) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return default
    values = tensor.as_numpy().reshape(-1)
    if values.size != 1:
        raise BadRequest(f"{name} must hold exactly one element, got {values.size}")
    return values[0]


def _check_cancelled(request: Any) -> None:
    if request.is_cancelled():
        raise Cancelled("the request was cancelled")


def _response(text: str) -> Any:
    tensor = pb_utils.Tensor("text_output", np.array([text.encode("utf-8")], dtype=np.object_))
    return pb_utils.InferenceResponse(output_tensors=[tensor])


def _send_error(sender: Any, exc: Exception) -> None:
    code = _error_code(exc)
    if code == pb_utils.TritonError.INTERNAL:
        pb_utils.Logger.log_error(f"bundle_llm: request failed: {exc!r}")
    try:
        sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc), code)), flags=_FINAL)
    except Exception as send_exc:  # the client is gone: nothing left to tell it
        pb_utils.Logger.log_warn(f"bundle_llm: could not send an error response: {send_exc!r}")


def _error_code(exc: Exception) -> Any:
    codes = {BadRequest: pb_utils.TritonError.INVALID_ARG, Cancelled: pb_utils.TritonError.CANCELLED,
             NotConfigured: pb_utils.TritonError.UNAVAILABLE}
    return codes.get(type(exc), pb_utils.TritonError.INTERNAL)
