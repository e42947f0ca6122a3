"""Baseline 1: transformers + PyTorch ``generate`` in fp32 on CPU.

Timing method: a streamer passed to ``generate`` records ``time.perf_counter()`` at every ``put``.
``generate`` puts the prompt once before the prefill forward and then each new token as soon as
it is chosen, so

- ``prefill_s`` = call start -> first new token put (prompt forward + greedy pick),
- ``decode_s`` = first new token put -> last new token put (``new_tokens - 1`` decode steps),
- decode tok/s = ``(new_tokens - 1) / decode_s``, total tok/s = ``new_tokens / (prefill_s + decode_s)``.

Greedy (``do_sample=False``), exactly ``new_tokens`` tokens (``min_new_tokens == max_new_tokens``,
which masks EOS until the limit), ``torch.set_num_threads(threads)``, one untimed warm-up call,
medians over ``runs`` timed calls.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.baselines import FloatArray, RunTiming, summarize


class _TimingStreamer:
    """Duck-typed ``BaseStreamer``: remembers when each ``put`` happened."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def put(self, value: Any) -> None:
        self.stamps.append(time.perf_counter())

    def end(self) -> None:
        pass


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def load_model(hf_dir: Path | str) -> Any:
    """The fp32 causal LM from ``hf_dir``, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    return model.eval()


def _generate_once(model: Any, prompt_ids: Sequence[int], new_tokens: int) -> tuple[RunTiming, list[int]]:
    import torch

    input_ids = torch.tensor([list(prompt_ids)], dtype=torch.long)
    streamer = _TimingStreamer()
    with torch.inference_mode():
        start = time.perf_counter()
        out = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=False,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            pad_token_id=model.generation_config.eos_token_id,
            streamer=streamer,
        )
    generated = out[0, input_ids.shape[1] :].tolist()
    stamps = streamer.stamps[1:]  # stamps[0] is the prompt
    if len(generated) != new_tokens or len(stamps) != new_tokens:
        raise RuntimeError(f"expected {new_tokens} new tokens, got {len(generated)} ({len(stamps)} puts)")
    timing = RunTiming(prefill_s=stamps[0] - start, decode_s=stamps[-1] - stamps[0], new_tokens=new_tokens)
    return timing, generated


def measure_torch(
    hf_dir: Path | str, prompt_ids: Sequence[int], new_tokens: int = 128, runs: int = 5, threads: int = 2
) -> dict[str, Any]:
    """Greedy ``generate`` of exactly ``new_tokens`` tokens; medians of ``runs`` after one warm-up.

    Returns :func:`bench.baselines.summarize`'s dict (``decode_tok_s``, ``total_tok_s``,
    ``prefill_ms``, generated ``tokens``...) with ``backend="torch-fp32"``.
    """
    _set_threads(threads)
    model = load_model(hf_dir)
    _generate_once(model, prompt_ids, new_tokens)  # warm-up
    results = [_generate_once(model, prompt_ids, new_tokens) for _ in range(runs)]
    return summarize(
        "torch-fp32",
        [timing for timing, _ in results],
        [tokens for _, tokens in results],
        threads=threads,
        prompt_len=len(prompt_ids),
    )


def torch_next_token_logprobs(hf_dir: Path | str, token_ids: Sequence[int], threads: int = 2) -> FloatArray:
    """fp32 reference: ``[len(token_ids), vocab]`` log-softmax of the logits at every position.

    Row ``i`` is the distribution of the token after ``token_ids[: i + 1]`` (teacher forcing, one
    forward over the whole sequence).
    """
    import torch

    _set_threads(threads)
    model = load_model(hf_dir)
    input_ids = torch.tensor([list(token_ids)], dtype=torch.long)
    with torch.inference_mode():
        logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits[0]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
    return np.ascontiguousarray(logprobs.numpy(), dtype=np.float32)
