"""One routing contract on both sides of the wire: the signals a device routes on give the cloud the same
scores and the same decisions, over routing modes, trained and untrained probes and calibration maps.

The device path is the agent's (``edge_agent.core.agent.Agent._route``): the TBG probe after prefill,
then every signal of the generation (``edge_agent.model.signals``), decided by ``confroute.routing.decide``
and logged by ``edge_agent.core.records.outcome_record``. The cloud path starts from that record after the
protobuf round trip: the raw scores its statistics bin (``cloud_service.outcomes.statistics.record_fold``,
``confroute.routing.logged_scores``), the calibration map the policy carries, and the decision rule on them.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_service.outcomes.statistics import record_fold, score_bin
from confroute.calibration import fit_isotonic
from confroute.contract import (
    AnsweredBy,
    CalibrationMap,
    Latency,
    ModelRef,
    OutcomeRecord,
    Policy,
    RoutingMode,
    Thresholds,
)
from confroute.engine import Generation, SamplingParams
from confroute.routing import PROBE_TBG, Decision, Stage, decide, decide_score, logged_scores
from edge_agent.core.records import QueryContext, outcome_record
from edge_agent.model import signals

EDGE = ModelRef("smollm2-135m-instruct", "sha256:e1")
T0 = datetime(2026, 12, 7, tzinfo=timezone.utc)
unit = st.floats(0.0, 1.0)
probes = st.one_of(st.none(), unit)  # None: the bundle's probe is untrained
shadow_rates = st.one_of(st.just(0.0), st.floats(1e-6, 1.0))  # a subnormal rate overflows the fold's 1/p^2


@st.composite
def generations(draw: st.DrawFn) -> Generation:
    """A finished local generation with per-token log-probabilities and, when trained, probe scores."""
    logprobs = np.array(draw(st.lists(st.floats(-12.0, 0.0), max_size=24)), dtype=np.float64)
    size = logprobs.size
    return Generation(text="x" * size, token_ids=tuple(range(size)), logprobs=logprobs,
                      entropies=np.ones(size), max_probs=np.full(size, 0.5), tbg=draw(probes), slt=draw(probes),
                      finish_reason="stop", prompt_tokens=3, prefill_ms=1.0, decode_ms=1.0)


@st.composite
def calibration_maps(draw: st.DrawFn) -> CalibrationMap:
    """Empty (raw taken as calibrated), hand-set knots, or a map fitted by the recalibration's isotonic fit."""
    kind = draw(st.sampled_from(["empty", "knots", "fitted"]))
    if kind == "empty":
        return CalibrationMap()
    if kind == "knots":
        x = draw(st.lists(st.floats(-0.2, 1.2), min_size=1, max_size=8, unique=True))
        y = draw(st.lists(unit, min_size=len(x), max_size=len(x)))
        return CalibrationMap(tuple(sorted(x)), tuple(sorted(y)))
    points = draw(st.lists(st.tuples(unit, st.booleans()), min_size=1, max_size=40))
    scores, correct = zip(*points, strict=True)
    return fit_isotonic(scores, correct)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    low, high = sorted((draw(unit), draw(unit)))
    return Policy(policy_version="p1", edge_model=EDGE, cohort="beta", mode=draw(st.sampled_from(list(RoutingMode))),
                  thresholds=Thresholds(pre=draw(unit), post=draw(unit), hybrid_low=low, hybrid_high=high),
                  issued_at=T0, calibration=draw(calibration_maps()), shadow_rate=draw(shadow_rates))


def device_route(generation: Generation, policy: Policy, draw: float, veto: bool) -> tuple[Decision, dict[str, float]]:
    """The decision the agent logs and the signals its record carries."""
    pre_signals = {} if generation.tbg is None else {PROBE_TBG: generation.tbg}
    pre = decide(pre_signals, policy, draw, veto, stage=Stage.PRE)
    if pre.final:
        return pre, pre_signals
    named = {**pre_signals, **signals(generation)}
    return decide(named, policy, draw, veto, stage=Stage.POST), named


def device_record(decision: Decision, named: dict[str, float], policy: Policy) -> OutcomeRecord:
    query = QueryContext("q1", "dev-1", "beta", EDGE, [{"role": "user", "content": "hi"}], SamplingParams(),
                         policy, T0)
    answered_by = AnsweredBy.CLOUD if decision.escalates else AnsweredBy.EDGE
    return outcome_record(query, decision=decision.recorded(), answered_by=answered_by,
                          latency=Latency(edge_ms=1.0, total_ms=2.0), finished=T0, signals=named,
                          shadow=decision.shadow, propensity=decision.propensity, cloud_model=None)


def cloud_decision(raw: dict[str, float], policy: Policy, draw: float, veto: bool, stage: Stage) -> Decision:
    """The rule on the scores the cloud read from the record: the raw post score through the policy's map."""
    if stage is Stage.POST:
        return decide_score(policy.calibration(raw["post"]), policy, draw, veto, stage=stage)
    return decide_score(raw.get("pre"), policy, draw, veto, stage=stage)


@settings(max_examples=300, deadline=None)
@given(generation=generations(), policy=policies(), draw=st.floats(0.0, 1.0, exclude_max=True), veto=st.booleans())
def test_the_device_and_the_cloud_read_the_same_scores_and_decisions(
    generation: Generation, policy: Policy, draw: float, veto: bool
) -> None:
    decision, named = device_route(generation, policy, draw, veto)
    received = OutcomeRecord.from_pb(device_record(decision, named, policy).to_pb())

    raw = logged_scores(received.signals)
    assert dict(record_fold(received).bins) == {name: score_bin(value) for name, value in raw.items()}
    assert cloud_decision(raw, policy, draw, veto, decision.stage) == decision
    if decision.stage is Stage.POST:
        assert decision.score == policy.calibration(raw["post"])
    elif decision.score is not None:
        assert decision.score == raw["pre"]
