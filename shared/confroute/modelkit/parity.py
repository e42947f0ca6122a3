"""Parity report: how close a (quantized) bundle's next-token distributions are to an fp32 reference.

Teacher-forced on the reference's own greedy continuation of a few chat prompts, so both models are
scored on exactly the same text: mean/max KL(reference || candidate), top-1 agreement, max |logit diff|.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from confroute.engine import Engine, SamplingParams
from confroute.engine.sampling import log_softmax

PROMPTS = (
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain why the sky is blue in two sentences.",
    "List three uses of a paperclip.",
)


@dataclasses.dataclass(frozen=True)
class ParityReport:
    positions: int
    mean_kl: float
    max_kl: float
    top1_agreement: float
    max_abs_logit_diff: float

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def compare_bundles(reference: Path, candidate: Path, new_tokens: int = 32, verify: bool = False) -> ParityReport:
    ref, cand = Engine(reference, verify=verify), Engine(candidate, verify=verify)
    kls, agree, diffs = [], [], []
    for prompt in PROMPTS:
        ids = ref.encode_chat([{"role": "user", "content": prompt}])
        text = list(ref.generate(ids, SamplingParams(max_new_tokens=new_tokens, ignore_eos=True)).token_ids)
        for a, b in zip(_logits(ref, ids, text), _logits(cand, ids, text), strict=True):
            la, lb = log_softmax(a), log_softmax(b)
            kls.append(float((np.exp(la) * (la - lb)).sum()))
            agree.append(bool(a.argmax() == b.argmax()))
            diffs.append(float(np.abs(a - b).max()))
    return ParityReport(len(kls), float(np.mean(kls)), float(np.max(kls)), float(np.mean(agree)), float(np.max(diffs)))


def _logits(engine: Engine, prompt: list[int], continuation: list[int]) -> list[np.ndarray]:
    cache = engine.decoder.new_cache(len(prompt) + len(continuation))
    chunks = [prompt, *([t] for t in continuation[:-1])]
    steps = [engine.decoder.forward(cache, np.asarray([chunk]), logits=True).logits for chunk in chunks]
    return [s.astype(np.float64) for s in steps if s is not None]

