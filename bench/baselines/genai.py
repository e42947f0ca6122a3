"""Baseline 2: onnxruntime-genai (PyPI) models built by its own model builder (fp32 and int8).

Install (next to onnxruntime 1.32 it changes nothing else: its requirements are only
``numpy>=1.21.6`` and ``onnxruntime>=1.31.0``)::

    pip install onnxruntime-genai==0.18.0

The builder runs offline from the local HF folder (see :mod:`bench.baselines.hf_folder`)::

    python -m onnxruntime_genai.models.builder -i <hf folder> -o <out> -p fp32|int8 -e cpu -c <cache>

Quirks: ``--help`` of the builder crashes; ``-i <folder>`` without ``-m`` works offline; the int8
build logs ``Gather only supports 4 bits quantization`` (harmless: the tied embedding stays fp32,
the LM head is int8). The produced ``genai_config.json`` has no thread setting, so
:func:`build_genai_model` writes ``intra_op_num_threads`` into its session options and
:func:`measure_genai` overlays the requested thread count at load time as well.

Timing method (same as :mod:`bench.baselines.torch_generate`): ``append_tokens(prompt)`` runs the
prefill; the first ``generate_next_token()`` picks the first new token from those logits
(``prefill_s`` ends there); each later ``generate_next_token()`` runs one decode step and picks a
token (``decode_s`` = first -> last token, ``new_tokens - 1`` steps). Greedy, and
``min_length == max_length == prompt + new_tokens`` masks EOS so exactly ``new_tokens`` come out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.baselines import FloatArray, RunTiming, summarize

GENAI_PIN = "onnxruntime-genai==0.18.0"
PRECISIONS = ("fp32", "int8", "int4")
_REQUIRED = ("genai_config.json", "model.onnx", "tokenizer.json")


def _import_og() -> Any:
    try:
        import onnxruntime_genai as og
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"onnxruntime-genai is not installed: pip install {GENAI_PIN}") from exc
    return og


def is_complete(model_dir: Path) -> bool:
    """True when ``model_dir`` holds a finished builder output."""
    return all((model_dir / name).is_file() for name in _REQUIRED)


def set_session_threads(model_dir: Path | str, threads: int) -> None:
    """Write ``intra_op_num_threads`` (and one inter-op thread) into ``genai_config.json``."""
    path = Path(model_dir) / "genai_config.json"
    config = json.loads(path.read_text())
    options = config["model"]["decoder"].setdefault("session_options", {})
    options["intra_op_num_threads"] = threads
    options["inter_op_num_threads"] = 1
    path.write_text(json.dumps(config, indent=4) + "\n")


def _builder_command(python: str, hf_dir: Path, precision: str, out: Path, cache: Path) -> list[str]:
    return [
        python, "-m", "onnxruntime_genai.models.builder",
        "-i", str(hf_dir), "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(cache),
    ]  # fmt: skip


def _run_builder(command: list[str], log_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log_path.open("w") as log:
        proc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        tail = log_path.read_text()[-2000:]
        raise RuntimeError(f"genai builder failed ({proc.returncode}): {' '.join(command)}\n{tail}")


def build_genai_model(
    hf_dir: Path | str,
    precision: str,
    out_dir: Path | str,
    threads: int = 2,
    python: str = sys.executable,
) -> Path:
    """Build (once) an onnxruntime-genai CPU model of ``precision`` from the HF folder ``hf_dir``.

    Written to a temp dir and renamed into ``out_dir``; the builder log is kept as
    ``out_dir/builder.log``. ``python`` must have onnxruntime-genai, torch and transformers.
    Takes ~10-15 s and ~2 GB RAM for SmolLM2-135M on 2 cores.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    out = Path(out_dir).resolve()
    if is_complete(out):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp.chmod(0o755)
        model_tmp, cache = tmp / "model", tmp / "cache"
        command = _builder_command(python, Path(hf_dir).resolve(), precision, model_tmp, cache)
        _run_builder(command, tmp / "builder.log")
        shutil.move(str(tmp / "builder.log"), str(model_tmp / "builder.log"))
        set_session_threads(model_tmp, threads)
        if out.exists():
            shutil.rmtree(out)
        model_tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_model(model_dir: Path | str, threads: int = 2) -> Any:
    """An ``og.Model`` for CPU with ``threads`` intra-op threads (overlaid on the config file)."""
    og = _import_og()
    config = og.Config(str(model_dir))
    overlay = {"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}
    config.overlay(json.dumps(overlay))
    return og.Model(config)


def _new_generator(model: Any, max_length: int, min_length: int) -> Any:
    og = _import_og()
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=max_length, min_length=min_length)
    return og.Generator(model, params)


def _generate_once(model: Any, prompt_ids: Sequence[int], new_tokens: int) -> tuple[RunTiming, list[int]]:
    total = len(prompt_ids) + new_tokens
    generator = _new_generator(model, max_length=total, min_length=total)
    prompt = np.asarray(prompt_ids, dtype=np.int32)
    start = time.perf_counter()
    generator.append_tokens(prompt)
    generator.generate_next_token()
    first = time.perf_counter()
    while not generator.is_done():
        generator.generate_next_token()
    last = time.perf_counter()
    generated = [int(t) for t in generator.get_sequence(0)[len(prompt_ids) :]]
    if len(generated) != new_tokens:
        raise RuntimeError(f"expected {new_tokens} new tokens, got {len(generated)}")
    return RunTiming(prefill_s=first - start, decode_s=last - first, new_tokens=new_tokens), generated


def measure_genai(
    model_dir: Path | str,
    prompt_ids: Sequence[int],
    new_tokens: int = 128,
    runs: int = 5,
    threads: int = 2,
    label: str | None = None,
) -> dict[str, Any]:
    """Greedy generation of exactly ``new_tokens``; medians of ``runs`` after one warm-up.

    Returns :func:`bench.baselines.summarize`'s dict; ``backend`` is ``label`` or
    ``genai-<model dir name>``.
    """
    model = load_model(model_dir, threads)
    _generate_once(model, prompt_ids, new_tokens)  # warm-up
    results = [_generate_once(model, prompt_ids, new_tokens) for _ in range(runs)]
    return summarize(
        label or f"genai-{Path(model_dir).name}",
        [timing for timing, _ in results],
        [tokens for _, tokens in results],
        threads=threads,
        prompt_len=len(prompt_ids),
    )


def _log_softmax(logits: np.ndarray[Any, Any]) -> FloatArray:
    x: np.ndarray[Any, np.dtype[np.float64]] = logits.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    out = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    result: FloatArray = out.astype(np.float32)
    return result


def genai_next_token_logprobs(
    model_dir: Path | str, token_ids: Sequence[int], prefix_len: int = 1, threads: int = 2
) -> FloatArray:
    """``[len(token_ids), vocab]`` next-token log-probs from the genai model, teacher-forced.

    The first ``prefix_len`` tokens (normally the prompt) go in with one ``append_tokens`` call
    (prefill; ``get_output("logits")`` then holds every prefix position), the rest one token at a
    time through the KV-cache decode path, exactly as during generation. Row ``i`` is the
    distribution of the token after ``token_ids[: i + 1]``, matching
    :func:`bench.baselines.torch_generate.torch_next_token_logprobs`.
    """
    if not 1 <= prefix_len <= len(token_ids):
        raise ValueError(f"prefix_len must be in [1, {len(token_ids)}], not {prefix_len}")
    model = load_model(model_dir, threads)
    generator = _new_generator(model, max_length=len(token_ids), min_length=0)
    ids = np.asarray(token_ids, dtype=np.int32)
    generator.append_tokens(ids[:prefix_len])
    rows = [np.asarray(generator.get_output("logits"))[0]]
    for i in range(prefix_len, len(ids)):
        generator.append_tokens(ids[i : i + 1])
        rows.append(np.asarray(generator.get_output("logits"))[0])
    logits = np.concatenate(rows, axis=0)
    if logits.shape[0] != len(token_ids):
        raise RuntimeError(f"got logits for {logits.shape[0]} of {len(token_ids)} positions")
    return _log_softmax(logits)
