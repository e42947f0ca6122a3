"""The generation engine: a bundle's tokenizer, chat template and graph, stepped token by token."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from confroute.bundle.manifest import Manifest
from confroute.bundle.store import load_bundle
from confroute.engine.chat import ChatTemplate
from confroute.engine.params import SamplingParams
from confroute.engine.result import FinishReason, Generation, TokenEvent
from confroute.engine.sampling import sample_token
from confroute.engine.session import OnnxDecoder, RuntimeOptions, StepOutput
from confroute.engine.stops import StopMatcher
from confroute.errors import InvalidInput, PromptTooLong


class Engine:
    """Loads a bundle once; each :meth:`start` is one generation (not thread-safe: one at a time)."""

    def __init__(self, folder: str | os.PathLike[str], options: RuntimeOptions | None = None,
                 *, verify: bool = True) -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.manifest: Manifest = load_bundle(self.folder, verify=verify)
        self.tokenizer = Tokenizer.from_file(str(self.folder / self.manifest.tokenizer_file))
        self.chat_template = ChatTemplate((self.folder / self.manifest.chat_template_file).read_text("utf-8"))
        self.decoder = OnnxDecoder(self.folder, self.manifest, options or RuntimeOptions())
        self.eos_ids = frozenset(self.manifest.eos_token_ids)

    @property
    def context_length(self) -> int:
        return self.manifest.context_length

    def encode_chat(self, messages: Sequence[Mapping[str, Any]]) -> list[int]:
        if not messages:
            raise InvalidInput("messages must not be empty", field="messages")
        text = self.chat_template.render(messages, add_generation_prompt=True)
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def start(self, prompt_ids: Sequence[int], params: SamplingParams, *,
              features: bool = False) -> GenerationRun:
        """Prefills the prompt now (the TBG probe is then known); iterate the run to decode."""
        return GenerationRun(self, self._fit(list(prompt_ids), params), params, features)

    def generate(self, prompt_ids: Sequence[int], params: SamplingParams) -> Generation:
        run = self.start(prompt_ids, params)
        for _ in run:
            pass
        return run.result

    def chat(self, messages: Sequence[Mapping[str, Any]], params: SamplingParams) -> Generation:
        return self.generate(self.encode_chat(messages), params)

    def _fit(self, ids: list[int], params: SamplingParams) -> list[int]:
        if not ids:
            raise InvalidInput("the prompt is empty", field="messages")
        room = self.context_length - params.max_new_tokens
        if len(ids) <= room:
            return ids
        if params.truncate_prompt and room > 0:
            return ids[-room:]
        raise PromptTooLong(len(ids), params.max_new_tokens, self.context_length)

    def probe_score(self, step: StepOutput, output: str) -> float | None:
        """A probe's score, or None while the bundle says that probe is untrained."""
        probe = self.manifest.probe
        return float(step.probe[probe.outputs.index(output)]) if probe.is_trained(output) else None


class GenerationRun:
    """One generation: prefilled on construction, decoded as it is iterated (yields TokenEvents)."""

    def __init__(self, engine: Engine, prompt_ids: list[int], params: SamplingParams, features: bool) -> None:
        self._engine = engine
        self._params = params
        self._rng = np.random.default_rng(params.seed)
        self.prompt_tokens = len(prompt_ids)
        self._cache = engine.decoder.new_cache(len(prompt_ids) + params.max_new_tokens)
        started = time.perf_counter()
        self.prefill = engine.decoder.forward(self._cache, np.asarray([prompt_ids], dtype=np.int64),
                                              logits=not params.greedy, features=features)
        self.prefill_ms = (time.perf_counter() - started) * 1000.0
        self.tbg = engine.probe_score(self.prefill, "tbg")
        self._last = self.prefill
        self._tokens: list[int] = []
        self._signals: list[tuple[float, float, float]] = []
        self._text: list[str] = []
        self._finish: FinishReason | None = None
        self._decode_ms = 0.0

    def __iter__(self) -> Iterator[TokenEvent]:
        if self._finish is not None:
            return
        from tokenizers.decoders import DecodeStream

        stream = DecodeStream(skip_special_tokens=True)
        stops = StopMatcher(self._params.stop)
        started = time.perf_counter()
        step = self.prefill
        try:
            while True:
                token, logprob = self._choose(step)
                if token in self._engine.eos_ids and not self._params.ignore_eos:
                    self._finish = "stop"
                    break
                event = self._emit(token, logprob, step, stops.feed(stream.step(self._engine.tokenizer, token) or ""))
                yield event
                if stops.stopped or len(self._tokens) >= self._params.max_new_tokens:
                    self._finish = "stop" if stops.stopped else "length"
                    break
                step = self._engine.decoder.forward(self._cache, np.asarray([[token]], dtype=np.int64),
                                                    logits=not self._params.greedy)
                self._last = step
        finally:
            self._decode_ms = (time.perf_counter() - started) * 1000.0
            self._finish = self._finish or "stop"
        if tail := stops.flush():
            self._text.append(tail)
            yield TokenEvent(token_id=None, text=tail, logprob=0.0, entropy=0.0, max_prob=1.0)

    def _choose(self, step: StepOutput) -> tuple[int, float]:
        if self._params.greedy:
            return step.next_token, step.argmax_logprob
        assert step.logits is not None
        return sample_token(step.logits, self._params.temperature, self._params.top_p, self._rng)

    def _emit(self, token: int, logprob: float, step: StepOutput, text: str) -> TokenEvent:
        self._tokens.append(token)
        self._signals.append((logprob, step.entropy, step.max_prob))
        self._text.append(text)
        return TokenEvent(token_id=token, text=text, logprob=logprob, entropy=step.entropy, max_prob=step.max_prob)

    @property
    def result(self) -> Generation:
        """The finished generation (decodes whatever is left if the run was not fully iterated)."""
        if self._finish is None:
            for _ in self:
                pass
        signals = np.asarray(self._signals, dtype=np.float64).reshape(-1, 3)
        return Generation(
            text="".join(self._text), token_ids=tuple(self._tokens), logprobs=signals[:, 0],
            entropies=signals[:, 1], max_probs=signals[:, 2], tbg=self.tbg,
            slt=self._engine.probe_score(self._last, "slt"), finish_reason=self._finish or "stop",
            prompt_tokens=self.prompt_tokens, prefill_ms=self.prefill_ms, decode_ms=self._decode_ms,
        )


__all__ = ["Engine", "GenerationRun"]
