"""``EdgeAgent``: answers a query on the device, or escalates it, under the current routing policy.

Per query: prefill (the TBG probe is then known) -> the pre decision -> local decoding or escalation ->
the post decision when the pre stage deferred -> the outcome record, written durably to the outbox
before the answer is handed back (when the device's disk cannot take it, full or failing, the answer is
still handed back and the lost record is counted in ``outcomes_unrecorded`` and logged). A confident
local answer streams as it is decoded; an answer that still awaits the post decision is released once
decided (it may yet be replaced by the cloud's).
When the cloud cannot answer (down, slow, failing, or its stream breaks midway) the local answer is
given, flagged ``escalation_unavailable``; a broken stream is announced in the text before it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from confroute.contract import (
    AnsweredBy,
    EscalationRequest,
    EscalationResponse,
    Latency,
    OutcomeRecord,
    Policy,
    TokenDelta,
)
from confroute.contract import Decision as Recorded
from confroute.engine import Engine, Generation, SamplingParams
from confroute.engine.engine import GenerationRun
from confroute.errors import (
    DeadlineExceeded,
    Overloaded,
    PermissionDenied,
    RuntimeFailure,
    Unauthenticated,
    Unavailable,
)
from confroute.routing import PROBE_TBG, Action, Decision, Stage, decide
from edge_agent.answer import AgentAnswer, TextDelta, TokenLogprob
from edge_agent.cloud import EscalationClient, PolicyKeeper
from edge_agent.core.records import QueryContext, escalation_request, outcome_record
from edge_agent.model import EdgeModel, signals
from edge_agent.outbox import OutcomeQueue
from edge_agent.outbox.feedback import FeedbackDesk
from edge_agent.routing import PrivacyRules

log = logging.getLogger(__name__)

INTERRUPTED = "\n[the cloud's answer was interrupted; the device's answer follows]\n"
# The cloud could not or would not answer: the device answers itself (a refused credential included).
_CLOUD_FAILURES = (Unavailable, DeadlineExceeded, Overloaded, RuntimeFailure, Unauthenticated, PermissionDenied)
Events = Generator[TextDelta, None, AgentAnswer]


@dataclasses.dataclass(frozen=True)
class AgentIdentity:
    device_id: str
    cohort: str = ""


class EdgeAgent:
    """Routes queries between the local model and the cloud, up to ``model.parallel`` queries at once (the
    model batches their decoding; each query keeps its own signals and decision). Further queries wait."""

    def __init__(self, model: EdgeModel, policies: PolicyKeeper, outbox: OutcomeQueue, identity: AgentIdentity,
                 *, escalator: EscalationClient | None = None, privacy: PrivacyRules | None = None,
                 rng: random.Random | None = None, on_recorded: Callable[[], None] | None = None,
                 feedback: FeedbackDesk | None = None) -> None:
        self._model = model
        self._policies = policies
        self._outbox = outbox
        self._identity = identity
        self._escalator = escalator
        self._privacy = privacy or PrivacyRules()
        self._rng = rng or random.Random()
        self._on_recorded = on_recorded
        self.feedback = feedback  # user ratings of this agent's answers (the API's /v1/feedback)
        self._slots = threading.BoundedSemaphore(model.parallel)
        self._shadows = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._shadow_slots = threading.BoundedSemaphore(32)
        self.shadows_dropped = 0
        self.outcomes_unrecorded = 0  # outcome records the outbox could not store (a full or failing disk)

    @property
    def model_ids(self) -> Sequence[str]:
        return [self._model.model_id]

    @property
    def parallel(self) -> int:
        """Queries answered at once."""
        return self._model.parallel

    @property
    def policy(self) -> Policy:
        """The policy the agent routes with now (the keeper's current one)."""
        return self._policies.current

    def answer(self, messages: Sequence[Mapping[str, str]], params: SamplingParams) -> AgentAnswer:
        final = None
        for event in self.stream(messages, params):
            if isinstance(event, AgentAnswer):
                final = event
        assert final is not None
        return final

    def stream(self, messages: Sequence[Mapping[str, str]],
               params: SamplingParams) -> Iterator[TextDelta | AgentAnswer]:
        with self._slots:
            # The policy and the engine (its router probe) are taken together: a new pair applies to the next
            # query, and this one finishes on the engine it started with.
            policy, engine = self._policies.snapshot(self._model.acquire)
            try:
                answer = yield from self._route(self._context(messages, params, policy), engine)
            finally:
                self._model.release(engine)
            yield answer

    def close(self) -> None:
        self._shadows.shutdown(wait=True)  # the shadows already promised are sent (each within its deadline)

    def _context(self, messages: Sequence[Mapping[str, str]], params: SamplingParams,
                 policy: Policy) -> QueryContext:
        model = self._policies.edge_model
        return QueryContext(uuid.uuid4().hex, self._identity.device_id, self._identity.cohort, model, messages,
                            params, policy, datetime.now(timezone.utc))

    def _route(self, query: QueryContext, engine: Engine) -> Events:
        started = time.perf_counter()
        run = self._model.start(query.messages, query.params, engine)
        pre_signals = {} if run.tbg is None else {PROBE_TBG: run.tbg}
        pre = decide(pre_signals, query.policy, self._rng.random(),
                     self._privacy.vetoed(query.messages), stage=Stage.PRE)
        if pre.escalates:
            return (yield from self._escalate(query, pre, pre_signals, None, run, started))
        if pre.action is not Action.GENERATE:  # confident (or vetoed): stream the local answer as it comes
            gen = yield from _decode(run)
            return (yield from self._local(query, pre, gen, started, streamed=True))
        gen = run.result
        named = {**pre_signals, **signals(gen)}
        post = decide(named, query.policy, self._rng.random(),
                      self._privacy.vetoed(query.messages, gen.text), stage=Stage.POST)
        if post.escalates:
            return (yield from self._escalate(query, post, named, gen.text, gen, started))
        return (yield from self._local(query, post, gen, started, streamed=False))

    def _escalate(self, query: QueryContext, decision: Decision, named: Mapping[str, float], draft: str | None,
                  local: GenerationRun | Generation, started: float) -> Events:
        request = escalation_request(query, named, draft, shadow=False, propensity=decision.propensity)
        asked = time.perf_counter()
        relayed = False
        try:
            if self._escalator is None:
                raise Unavailable("no cloud is configured on this device")
            final: EscalationResponse | None = None
            for event in self._escalator.stream(request):
                if isinstance(event, TokenDelta):
                    relayed = True
                    yield TextDelta(event.text, "cloud")
                else:
                    final = event
            if final is None:
                raise Unavailable("the cloud's stream ended without an answer")
        except _CLOUD_FAILURES as exc:
            log.warning("query=%s escalation failed (%s): answering locally", query.query_id, exc)
            if relayed:
                yield TextDelta(INTERRUPTED, "edge")
            return (yield from self._fallback(query, decision, named, local, started, asked))
        cloud_ms = (time.perf_counter() - asked) * 1000.0
        return self._finish(query, decision, named, final.text, "cloud", started, cloud_ms, final=final)

    def _fallback(self, query: QueryContext, decision: Decision, named: Mapping[str, float],
                  local: GenerationRun | Generation, started: float, asked: float) -> Events:
        cloud_ms = (time.perf_counter() - asked) * 1000.0
        if isinstance(local, GenerationRun):
            gen = yield from _decode(local)
        else:
            gen = local
            if gen.text:
                yield _whole(gen)
        unavailable = dataclasses.replace(decision, action=Action.LOCAL)
        return self._finish(query, unavailable, {**named, **signals(gen)}, gen.text, "edge", started, cloud_ms,
                            gen=gen, unavailable=True)

    def _local(self, query: QueryContext, decision: Decision, gen: Generation, started: float,
               streamed: bool) -> Events:
        if not streamed and gen.text:
            yield _whole(gen)
        named = {**({} if gen.tbg is None else {PROBE_TBG: gen.tbg}), **signals(gen)}
        if decision.shadow and not self._send_shadow(query, named, gen.text, decision.propensity):
            decision = dataclasses.replace(decision, shadow=False)  # never record a shadow that was not sent
        return self._finish(query, decision, named, gen.text, "edge", started, None, gen=gen)

    def _finish(self, query: QueryContext, decision: Decision, named: Mapping[str, float], text: str, side: str,
                started: float, cloud_ms: float | None, *, gen: Generation | None = None,
                final: EscalationResponse | None = None, unavailable: bool = False) -> AgentAnswer:
        total_ms = (time.perf_counter() - started) * 1000.0
        edge_ms = total_ms - (cloud_ms or 0.0)
        recorded = Recorded.ESCALATION_UNAVAILABLE if unavailable else decision.recorded()
        record = outcome_record(
            query, decision=recorded, answered_by=AnsweredBy.CLOUD if side == "cloud" else AnsweredBy.EDGE,
            latency=_latency(edge_ms, cloud_ms, total_ms), finished=datetime.now(timezone.utc), signals=named,
            shadow=decision.shadow, propensity=decision.propensity, cloud_model=final.model if final else None)
        self._record(record)
        log.info("query=%s mode=%s decision=%s side=%s score=%s threshold=%s shadow=%s edge_ms=%.0f cloud_ms=%s "
                 "total_ms=%.0f", query.query_id, query.policy.mode.value, recorded.value, side,
                 _fmt(decision.score), _fmt(decision.threshold), decision.shadow, edge_ms,
                 "-" if cloud_ms is None else f"{cloud_ms:.0f}", total_ms)
        return _answer(query, decision, recorded, text, side, gen, final, total_ms, unavailable, self._model.model_id)

    def _record(self, record: OutcomeRecord) -> None:
        """Stores the outcome durably before the caller hears the answer. An outbox that cannot store it (the
        disk is full or failing) loses this record, counted and logged, never the answer."""
        try:
            self._outbox.put(record)
        except Unavailable as exc:
            self.outcomes_unrecorded += 1
            log.error("query=%s outcome not recorded (%d so far): %s", record.query_id, self.outcomes_unrecorded,
                      exc)
            return
        if self._on_recorded is not None:
            self._on_recorded()

    def _send_shadow(self, query: QueryContext, named: Mapping[str, float], draft: str, propensity: float) -> bool:
        """Fire and forget: the user has the local answer; the cloud's lands in its log for recalibration.

        Returns False when it could not be sent (no cloud, vetoed, or too many shadows already waiting:
        counted in ``shadows_dropped``)."""
        if self._escalator is None or self._privacy.vetoed(query.messages, draft):
            return False
        if not self._shadow_slots.acquire(blocking=False):
            self.shadows_dropped += 1
            return False
        request = escalation_request(query, named, draft, shadow=True, propensity=propensity)
        self._shadows.submit(self._shadow_call, request)
        return True

    def _shadow_call(self, request: EscalationRequest) -> None:
        assert self._escalator is not None
        try:
            self._escalator.escalate(request)
        except _CLOUD_FAILURES as exc:
            log.debug("shadow escalation failed: %s", exc)
        finally:
            self._shadow_slots.release()


def _decode(run: GenerationRun) -> Generator[TextDelta, None, Generation]:
    pending: list[TokenLogprob] = []  # tokens whose text is still held back travel with the next text
    for event in run:
        if event.token_id is not None:
            pending.append(TokenLogprob(event.text, event.logprob))
        if event.text:
            yield TextDelta(event.text, "edge", tuple(pending))
            pending.clear()
    return run.result


def _whole(gen: Generation) -> TextDelta:
    """A finished local answer as one delta, with its tokens' log-probabilities."""
    return TextDelta(gen.text, "edge", tuple(map(TokenLogprob, gen.token_texts, map(float, gen.logprobs))))


def _latency(edge_ms: float, cloud_ms: float | None, total_ms: float) -> Latency:
    return Latency(edge_ms=max(edge_ms, 0.0), cloud_ms=cloud_ms, total_ms=total_ms)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _answer(query: QueryContext, decision: Decision, recorded: Recorded, text: str, side: str,
            gen: Generation | None, final: EscalationResponse | None, total_ms: float, unavailable: bool,
            model_id: str) -> AgentAnswer:
    prompt_tokens = gen.prompt_tokens if gen else (final.usage.prompt_tokens if final else 0)
    completion = gen.completion_tokens if gen else (final.usage.completion_tokens if final else 0)
    finish = gen.finish_reason if gen else (final.finish_reason.value if final else "stop")
    return AgentAnswer(
        query_id=query.query_id, text=text, side="cloud" if side == "cloud" else "edge",
        model=final.model.id if final else model_id, decision=recorded.value, confidence=decision.score,
        threshold=decision.threshold, policy_version=query.policy.policy_version,
        escalation_unavailable=unavailable, finish_reason="length" if finish == "length" else "stop",
        prompt_tokens=prompt_tokens, completion_tokens=completion, latency_ms=total_ms, shadow=decision.shadow)
