"""The decision rule: thresholds per mode, the hybrid band, shadow sampling and the privacy veto."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confroute.contract import Decision as RecordedDecision
from confroute.contract import Policy, RoutingMode, Thresholds
from confroute.routing import Action, Decision, Stage, decide, decide_score, default_policy
from tests.confroute.routing.policies import EDGE_MODEL, a_policy, generated

unit = st.floats(0.0, 1.0)
draws = st.floats(0.0, 1.0, exclude_max=True)
modes = st.sampled_from(list(RoutingMode))
PRE_ORDER = {Action.LOCAL: 0, Action.GENERATE: 1, Action.ESCALATE: 2}
POST_ORDER = {Action.LOCAL: 0, Action.ESCALATE_AFTER_LOCAL: 1}


def pre(
    mode: RoutingMode, tbg: float, policy: Policy | None = None, draw: float = 0.99, veto: bool = False
) -> Decision:
    return decide({"probe_tbg": tbg}, replace(policy or a_policy(), mode=mode), draw, veto, stage=Stage.PRE)


def post(confidence: float, policy: Policy | None = None, draw: float = 0.99, veto: bool = False) -> Decision:
    signals = generated(math.log(confidence))
    return decide(signals, replace(policy or a_policy(), mode=RoutingMode.POST), draw, veto, stage=Stage.POST)


@st.composite
def thresholds(draw: st.DrawFn) -> Thresholds:
    low, high = sorted((draw(unit), draw(unit)))
    return Thresholds(pre=draw(unit), post=draw(unit), hybrid_low=low, hybrid_high=high)


def test_pre_escalates_before_decoding_below_its_threshold() -> None:
    assert pre(RoutingMode.PRE, 0.49).action is Action.ESCALATE
    assert pre(RoutingMode.PRE, 0.5).action is Action.LOCAL  # at the threshold: local
    assert pre(RoutingMode.PRE, 0.49).threshold == 0.5


def test_post_always_generates_first_then_compares_with_its_threshold() -> None:
    assert pre(RoutingMode.POST, 0.01).action is Action.GENERATE
    assert post(0.59).action is Action.ESCALATE_AFTER_LOCAL
    assert post(0.61).action is Action.LOCAL
    assert post(0.59).score == pytest.approx(0.59)


def test_hybrid_escalates_below_low_answers_locally_above_high_and_defers_the_band() -> None:
    assert pre(RoutingMode.HYBRID, 0.29).action is Action.ESCALATE
    assert pre(RoutingMode.HYBRID, 0.8).action is Action.LOCAL
    band = pre(RoutingMode.HYBRID, 0.3)
    assert (band.action, band.threshold, band.final) == (Action.GENERATE, 0.8, False)


@pytest.mark.parametrize("mode", [RoutingMode.PRE, RoutingMode.HYBRID])
def test_without_a_tbg_probe_every_mode_defers_to_after_generation(mode: RoutingMode) -> None:
    decision = decide({}, a_policy(mode=mode), 0.5, stage=Stage.PRE)
    assert (decision.action, decision.score, decision.threshold) == (Action.GENERATE, None, None)


@given(mode=modes, a=unit, b=unit, policy_thresholds=thresholds(), draw=draws)
def test_more_confidence_never_means_more_escalation(
    mode: RoutingMode, a: float, b: float, policy_thresholds: Thresholds, draw: float
) -> None:
    policy = a_policy(thresholds=policy_thresholds)
    low, high = sorted((a, b))
    assert PRE_ORDER[pre(mode, low, policy, draw).action] >= PRE_ORDER[pre(mode, high, policy, draw).action]
    low, high = max(low, 1e-9), max(high, 1e-9)
    assert POST_ORDER[post(low, policy, draw).action] >= POST_ORDER[post(high, policy, draw).action]


@given(score=unit, policy_thresholds=thresholds(), draw=draws)
def test_thresholds_are_respected(score: float, policy_thresholds: Thresholds, draw: float) -> None:
    policy = a_policy(thresholds=policy_thresholds)
    t = policy_thresholds
    assert pre(RoutingMode.PRE, score, policy, draw).escalates == (score < t.pre)
    hybrid = pre(RoutingMode.HYBRID, score, policy, draw).action
    assert (hybrid is Action.ESCALATE) == (score < t.hybrid_low)
    assert (hybrid is Action.LOCAL) == (score >= t.hybrid_high)
    decided = post(max(score, 1e-12), policy, draw)
    assert decided.escalates == (decided.score is not None and decided.score < t.post)


@given(mode=modes, score=unit, draw=draws, rate=unit)
def test_only_local_answers_are_shadowed_with_the_propensity_of_the_logged_action(
    mode: RoutingMode, score: float, draw: float, rate: float
) -> None:
    policy = a_policy(shadow_rate=rate)
    for decision in (pre(mode, score, policy, draw), post(max(score, 1e-12), policy, draw)):
        if decision.action is Action.LOCAL:
            assert decision.shadow == (draw < rate)
            assert decision.propensity == pytest.approx(rate if decision.shadow else 1.0 - rate)
        else:
            assert not decision.shadow
            assert decision.propensity == 1.0


def test_the_shadow_rate_holds_over_many_queries() -> None:
    rng, n, rate = random.Random(20250101), 20_000, 0.05
    policy = a_policy(shadow_rate=rate)
    shadows = sum(post(0.95, policy, rng.random()).shadow for _ in range(n))
    sigma = math.sqrt(n * rate * (1 - rate))
    assert abs(shadows - n * rate) < 5 * sigma


def test_the_hybrid_pipeline_shadows_its_share_of_local_answers() -> None:
    rng, rate = random.Random(7), 0.2
    policy = a_policy(shadow_rate=rate)
    local = shadows = 0
    for _ in range(20_000):
        decision = pre(RoutingMode.HYBRID, rng.random(), policy, rng.random())
        if decision.action is Action.GENERATE:
            decision = post(max(rng.random(), 1e-9), policy, rng.random())
        local += decision.action is Action.LOCAL
        shadows += decision.shadow
    sigma = math.sqrt(local * rate * (1 - rate))
    assert abs(shadows - local * rate) < 5 * sigma


@given(mode=modes, score=unit, draw=draws)
def test_the_privacy_veto_wins(mode: RoutingMode, score: float, draw: float) -> None:
    policy = a_policy(shadow_rate=1.0)
    for decision in (pre(mode, score, policy, draw, veto=True), post(max(score, 1e-12), policy, draw, veto=True)):
        assert not decision.escalates and not decision.shadow
        assert decision.action in {Action.LOCAL, Action.GENERATE, Action.VETOED}


def test_a_vetoed_escalation_is_recorded_as_vetoed() -> None:
    decision = pre(RoutingMode.PRE, 0.1, veto=True)
    assert decision.action is Action.VETOED
    assert decision.recorded() is RecordedDecision.VETOED
    assert pre(RoutingMode.PRE, 0.1).recorded() is RecordedDecision.ESCALATED
    assert post(0.9).recorded() is RecordedDecision.LOCAL
    with pytest.raises(ValueError, match="not final"):
        pre(RoutingMode.POST, 0.5).recorded()


@pytest.mark.parametrize("draw", [-0.1, 1.0, math.nan])
def test_the_draw_must_be_uniform_in_the_unit_interval(draw: float) -> None:
    with pytest.raises(ValueError, match="rng_draw"):
        pre(RoutingMode.PRE, 0.5, draw=draw)


def test_the_default_policy_decides_after_prefill_and_falls_back_to_post_without_a_probe() -> None:
    policy = default_policy(EDGE_MODEL, "beta")

    assert Policy.from_pb(policy.to_pb()) == policy  # it survives the wire
    assert (policy.mode, policy.policy_version, policy.edge_model) == (RoutingMode.PRE, "builtin", EDGE_MODEL)
    assert decide({"probe_tbg": 0.3}, policy, 0.5, stage=Stage.PRE).action is Action.ESCALATE
    assert decide({"probe_tbg": 0.7}, policy, 0.5, stage=Stage.PRE).action is Action.LOCAL
    assert decide({}, policy, 0.5, stage=Stage.PRE).action is Action.GENERATE  # untrained TBG probe
    assert post(0.4, policy).escalates and not post(0.9, policy).escalates


@given(mode=modes, score=st.one_of(st.none(), unit), draw=draws, veto=st.booleans())
def test_deciding_on_signals_is_deciding_on_their_score(
    mode: RoutingMode, score: float | None, draw: float, veto: bool
) -> None:
    policy = a_policy(mode=mode)
    signals = {} if score is None else {"probe_tbg": score}
    expected = decide_score(None if mode is RoutingMode.POST else score, policy, draw, veto, stage=Stage.PRE)
    assert decide(signals, policy, draw, veto, stage=Stage.PRE) == expected


def test_a_decision_after_generation_needs_a_score() -> None:
    with pytest.raises(ValueError, match="needs a score"):
        decide_score(None, a_policy(), 0.5, stage=Stage.POST)
