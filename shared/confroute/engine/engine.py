"""The generation engine: a bundle's tokenizer, chat template and graph, stepped token by token."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from confroute.bundle.manifest import Manifest
from confroute.bundle.store import load_bundle
from confroute.engine.batch import BatchScheduler, Follow, Row
from confroute.engine.chat import ChatTemplate
from confroute.engine.params import SamplingParams
from confroute.engine.result import FinishReason, Generation, TokenEvent
from confroute.engine.sampling import sample_token
from confroute.engine.session import KvCache, OnnxDecoder, RuntimeOptions, StepOutput
from confroute.engine.stops import StopMatcher
from confroute.errors import InvalidInput, PromptTooLong, RuntimeFailure

log = logging.getLogger(__name__)

#: Families whose graph reads each row's positions from its own length (rotary inside the attention op);
#: gpt2's learned positions come from the mask's width, shared by the whole batch.
_BATCHABLE = frozenset({"llama"})


class Engine:
    """Loads a bundle once; each :meth:`start` is one generation.

    With ``max_batch == 1`` it is not thread-safe (one generation at a time). With ``max_batch > 1`` a
    scheduler thread owns the session (see :mod:`confroute.engine.batch`): generations may run on any
    number of threads at once, up to ``max_batch`` of them decode together and the others wait for a row.
    Call :meth:`close` to stop that thread.
    """

    def __init__(self, folder: str | os.PathLike[str], options: RuntimeOptions | None = None,
                 *, verify: bool = True, max_batch: int = 1) -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.manifest: Manifest = load_bundle(self.folder, verify=verify)
        self.tokenizer = Tokenizer.from_file(str(self.folder / self.manifest.tokenizer_file))
        self.chat_template = ChatTemplate((self.folder / self.manifest.chat_template_file).read_text("utf-8"))
        self.decoder = OnnxDecoder(self.folder, self.manifest, options or RuntimeOptions())
        self.eos_ids = frozenset(self.manifest.eos_token_ids)
        self.batch: BatchScheduler | None = None
        if max_batch < 1:
            raise InvalidInput(f"max_batch must be >= 1, got {max_batch}", field="max_batch")
        if max_batch > 1:
            family = str(self.manifest.architecture.get("family"))
            if family in _BATCHABLE:
                self.batch = BatchScheduler(self.decoder, max_batch)
            else:
                log.warning("the %s family cannot decode in batches; answering one request at a time", family)

    @property
    def parallel(self) -> int:
        """How many generations decode at once."""
        return self.batch.rows if self.batch is not None else 1

    def close(self) -> None:
        """Stops the batch scheduler, if any (generations still running then fail)."""
        if self.batch is not None:
            self.batch.close()

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
        """Prefills the prompt now (the TBG probe is then known); iterate the run to decode.

        ``features=True`` also keeps the probe features of the prefill (``run.tbg_features``) and of the
        step the SLT probe is read at (``run.slt_features``), for probe training.
        """
        return self.resume(self.prefill(prompt_ids, params, features=features), params, features=features)

    def prefill(self, prompt_ids: Sequence[int], params: SamplingParams, *, features: bool = False) -> Prefix:
        """Runs the prompt once into a KV cache that :meth:`resume` can decode from many times.

        ``params`` sizes the cache (prompt + ``max_new_tokens``) and decides whether the logits are kept
        (any sampling run needs them); runs resumed from the prefix must not ask for more new tokens.
        """
        ids = self._fit(list(prompt_ids), params)
        batched = self.batch is not None

        def run() -> Prefix:  # in batch mode, on the scheduler's thread: prefill_ms leaves out the wait for it
            started = time.perf_counter()
            cache = self.decoder.new_cache(len(ids) + params.max_new_tokens, arrays=batched)
            step = self.decoder.forward(cache, np.asarray([ids], dtype=np.int64), logits=not params.greedy,
                                        features=features)
            return Prefix(cache, step, len(ids), params.max_new_tokens, (time.perf_counter() - started) * 1000.0)

        return run() if self.batch is None else self.batch.call(run)

    def resume(self, prefix: Prefix, params: SamplingParams, *, features: bool = False) -> GenerationRun:
        """A new run decoding after ``prefix``'s prompt, reusing its KV cache (no second prefill).

        Runs resumed from one prefix share its cache: decode them one after another. Starting a new run
        invalidates the previous one (iterating it then raises ``RuntimeFailure``). In batch mode each run
        copies the prefix into its own row, so runs of one prefix may decode together. Every resumed run
        reports the shared prefill's ``prefill_ms``: count it once when adding up costs.
        """
        if params.max_new_tokens > prefix.max_new_tokens:
            raise InvalidInput(f"the prefix has room for {prefix.max_new_tokens} new tokens, "
                               f"{params.max_new_tokens} were asked for", field="max_new_tokens")
        if not params.greedy and prefix.step.logits is None:
            raise InvalidInput("sampling needs a prefix prefilled with sampling parameters (it keeps the logits)",
                               field="temperature")
        return GenerationRun(self, prefix, params, features)

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


class Prefix:
    """A prompt run once through the graph: its KV cache and the prefill's outputs (see :meth:`Engine.prefill`)."""

    def __init__(self, cache: KvCache, step: StepOutput, prompt_tokens: int, max_new_tokens: int,
                 prefill_ms: float) -> None:
        self.cache = cache
        self.step = step
        self.prompt_tokens = prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.prefill_ms = prefill_ms
        self.owner: object | None = None


class GenerationRun:
    """One generation after a prefilled prompt, decoded as it is iterated (yields TokenEvents).

    With ``features`` every decode step binds the probe features too (one copy of ``feature_dim``
    floats per step): the SLT step is only known once the run has ended.
    """

    def __init__(self, engine: Engine, prefix: Prefix, params: SamplingParams, features: bool) -> None:
        self._engine = engine
        self._params = params
        self._features = features
        self._rng = np.random.default_rng(params.seed)
        self._prefix = prefix
        self._row: Row | None = None
        if engine.batch is not None:
            follow = None
            if params.greedy:  # the scheduler feeds the argmax itself: no round trip to this thread per token
                eos = frozenset() if params.ignore_eos else engine.eos_ids
                follow = Follow(eos, params.max_new_tokens - 1)
            self._row = engine.batch.row(prefix.cache, prefix.prompt_tokens, follow)
        else:
            prefix.owner = self
            prefix.cache.length = prefix.prompt_tokens  # a resumed run overwrites the previous run's positions
        self._cache = prefix.cache
        self.prompt_tokens = prefix.prompt_tokens
        self.prefill = prefix.step
        self.prefill_ms = prefix.prefill_ms
        self.tbg = engine.probe_score(self.prefill, "tbg")
        self._last = self.prefill
        self._tokens: list[int] = []
        self._signals: list[tuple[float, float, float]] = []
        self._text: list[str] = []
        self._text_per_token: list[str] = []  # the text each token released (a held-back tail joins the last)
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
                step = self._step(token)
                self._last = step
        finally:
            if self._row is not None:
                self._row.close()
            self._decode_ms = (time.perf_counter() - started) * 1000.0
            self._finish = self._finish or "stop"
        if tail := stops.flush():
            self._text.append(tail)
            if self._text_per_token:
                self._text_per_token[-1] += tail
            yield TokenEvent(token_id=None, text=tail, logprob=0.0, entropy=0.0, max_prob=1.0)

    def _step(self, token: int) -> StepOutput:
        logits = not self._params.greedy
        if self._row is not None:
            return self._row.step(token, logits=logits, features=self._features)
        if self._prefix.owner is not self:
            raise RuntimeFailure("another run was resumed from this run's prefix; decode them in turn")
        return self._engine.decoder.step(self._cache, token, logits=logits, features=self._features)

    def _choose(self, step: StepOutput) -> tuple[int, float]:
        if self._params.greedy:
            return step.next_token, step.argmax_logprob
        assert step.logits is not None
        return sample_token(step.logits, self._params.temperature, self._params.top_p, self._rng)

    def _emit(self, token: int, logprob: float, step: StepOutput, text: str) -> TokenEvent:
        self._tokens.append(token)
        self._signals.append((logprob, step.entropy, step.max_prob))
        self._text.append(text)
        self._text_per_token.append(text)
        return TokenEvent(token_id=token, text=text, logprob=logprob, entropy=step.entropy, max_prob=step.max_prob)

    @property
    def tbg_features(self) -> np.ndarray | None:
        """Probe features after prefill (what the TBG probe reads), if the run was started with features."""
        return self.prefill.features

    @property
    def slt_features(self) -> np.ndarray | None:
        """Probe features of the step the SLT probe is read at, once decoding has ended (else None)."""
        return self._last.features if self._finish is not None and self._features else None

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
            token_texts=tuple(self._text_per_token),
        )


__all__ = ["Engine", "GenerationRun", "Prefix"]
