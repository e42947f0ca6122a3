"""The agent routes each query under its policy, answers from the right side, and records every outcome."""

from __future__ import annotations

import time

import pytest

from confroute.contract import Decision, OutcomeRecord
from confroute.contract import RoutingMode as Mode
from confroute.engine import SamplingParams
from confroute.errors import Unavailable
from edge_agent.answer import AgentAnswer, TextDelta
from edge_agent.core.agent import INTERRUPTED, EdgeAgent
from edge_agent.routing import PrivacyRules
from tests.edge_agent.cloud.real_cloud import RealCloud
from tests.edge_agent.cloud.scripted import ScriptedCloud, breaks_after, free_port, serving, slow
from tests.edge_agent.core.conftest import MakeAgent
from tests.factories import outcome

QUESTION = [{"role": "user", "content": "what is two plus two"}]
SHORT = SamplingParams(max_new_tokens=6, ignore_eos=True)


def queued(agent: EdgeAgent) -> list[OutcomeRecord]:
    """What the agent wrote to its outbox, oldest first."""
    return [entry.record() for entry in agent._outbox.peek_batch(1000)]


def test_a_confident_answer_stays_on_the_device(make_agent: MakeAgent) -> None:
    agent = make_agent(Mode.POST, post=0.0)
    answer = agent.answer(QUESTION, SHORT)
    assert answer.side == "edge" and answer.decision == "local"
    assert answer.completion_tokens == 6
    [record] = queued(agent)
    assert record.decision is Decision.LOCAL and record.query_id == answer.query_id


def test_post_mode_escalates_an_unsure_answer_with_its_draft(make_agent: MakeAgent, real_cloud: RealCloud) -> None:
    agent = make_agent(Mode.POST, post=1.0, cloud=real_cloud.target)
    answer = agent.answer(QUESTION, SHORT)
    assert answer.side == "cloud" and answer.text.strip() == "what is two plus two"
    assert answer.confidence is not None and answer.confidence < answer.threshold == 1.0  # type: ignore[operator]
    [record] = queued(agent)
    assert record.decision is Decision.ESCALATED and record.latency.cloud_ms is not None
    assert "logprob_mean" in record.signals
    # The device's outcome records carry no text (its rule today): the draft went to the cloud in the
    # escalation only, never into the outbox or the upload.
    assert (record.prompt_text, record.answer_text, record.edge_draft_text) == (None, None, None)


def test_pre_mode_escalates_before_decoding_anything(make_agent: MakeAgent, real_cloud: RealCloud) -> None:
    agent = make_agent(Mode.PRE, pre=0.5, cloud=real_cloud.target, tbg=0.1)
    events = list(agent.stream(QUESTION, SHORT))
    assert all(e.side == "cloud" for e in events if isinstance(e, TextDelta))
    final = events[-1]
    assert isinstance(final, AgentAnswer) and final.side == "cloud"
    assert final.confidence == pytest.approx(0.1, abs=1e-4)
    assert set(queued(agent)[0].signals) == {"probe_tbg"}  # nothing was decoded locally


def test_pre_mode_answers_locally_when_the_probe_is_confident(make_agent: MakeAgent, real_cloud: RealCloud) -> None:
    answer = make_agent(Mode.PRE, pre=0.5, cloud=real_cloud.target, tbg=0.9).answer(QUESTION, SHORT)
    assert answer.side == "edge" and answer.confidence == pytest.approx(0.9, abs=1e-4)


@pytest.mark.parametrize(("tbg", "side", "stage_threshold"), [(0.1, "cloud", 0.2), (0.9, "edge", 0.8),
                                                             (0.5, "cloud", 1.0)])
def test_hybrid_mode_decides_clear_cases_early_and_the_band_after_generation(
        make_agent: MakeAgent, real_cloud: RealCloud, tbg: float, side: str, stage_threshold: float) -> None:
    agent = make_agent(Mode.HYBRID, low=0.2, high=0.8, post=1.0, cloud=real_cloud.target, tbg=tbg)
    answer = agent.answer(QUESTION, SHORT)
    assert answer.side == side and answer.threshold == stage_threshold


def test_a_vetoed_query_never_leaves_the_device(make_agent: MakeAgent, real_cloud: RealCloud) -> None:
    rules = PrivacyRules.compile([r"two\s+plus"])
    answer = make_agent(Mode.POST, post=1.0, cloud=real_cloud.target, privacy=rules).answer(QUESTION, SHORT)
    assert answer.side == "edge" and answer.decision == "vetoed"
    assert real_cloud.log.recorded == []  # the cloud never heard of it


def test_cloud_down_gives_the_local_answer_within_the_deadline(make_agent: MakeAgent) -> None:
    agent = make_agent(Mode.POST, post=1.0, cloud=f"127.0.0.1:{free_port()}", deadline_s=1.0)
    started = time.monotonic()
    answer = agent.answer(QUESTION, SHORT)
    assert time.monotonic() - started < 3.0
    assert answer.side == "edge" and answer.escalation_unavailable
    assert queued(agent)[0].decision is Decision.ESCALATION_UNAVAILABLE


def test_a_slow_cloud_gives_the_local_answer_within_the_deadline(make_agent: MakeAgent) -> None:
    with serving(ScriptedCloud(slow(5.0))) as port:
        agent = make_agent(Mode.POST, post=1.0, cloud=f"127.0.0.1:{port}", deadline_s=0.5)
        started = time.monotonic()
        answer = agent.answer(QUESTION, SHORT)
        assert time.monotonic() - started < 2.5
    assert answer.escalation_unavailable and answer.side == "edge"


def test_a_stream_broken_midway_is_announced_and_the_local_answer_follows(make_agent: MakeAgent) -> None:
    with serving(ScriptedCloud(breaks_after(2))) as port:
        events = list(make_agent(Mode.POST, post=1.0, cloud=f"127.0.0.1:{port}").stream(QUESTION, SHORT))
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert [t.side for t in texts[:2]] == ["cloud", "cloud"]
    assert texts[2].text == INTERRUPTED
    final = events[-1]
    assert isinstance(final, AgentAnswer) and final.escalation_unavailable and final.side == "edge"
    assert "".join(t.text for t in texts[3:]) == final.text


def test_shadow_sampling_sends_about_the_policy_share_of_confident_answers(make_agent: MakeAgent,
                                                                            real_cloud: RealCloud) -> None:
    agent = make_agent(Mode.POST, post=0.0, shadow=0.3, cloud=real_cloud.target)
    n = 120
    answers = [agent.answer(QUESTION, SamplingParams(max_new_tokens=1)) for _ in range(n)]
    shadows = sum(a.shadow for a in answers)
    assert 0.3 * n - 3 * (n * 0.3 * 0.7) ** 0.5 <= shadows <= 0.3 * n + 3 * (n * 0.3 * 0.7) ** 0.5
    assert all(a.side == "edge" for a in answers)
    records = [r for r in queued(agent) if r.shadow]
    assert len(records) == shadows and all(r.propensity == pytest.approx(0.3) for r in records)
    agent.close()  # waits for the shadow calls
    deadline = time.monotonic() + 5.0  # the service records an escalation just after answering it
    while len([r for r in real_cloud.log.recorded if r.shadow]) < shadows and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len([r for r in real_cloud.log.recorded if r.shadow]) == shadows


def test_an_erroring_cloud_gives_the_local_answer(make_agent: MakeAgent) -> None:
    import grpc

    from tests.edge_agent.cloud.scripted import fails

    with serving(ScriptedCloud(fails(grpc.StatusCode.INTERNAL))) as port:
        answer = make_agent(Mode.POST, post=1.0, cloud=f"127.0.0.1:{port}").answer(QUESTION, SHORT)
    assert answer.side == "edge" and answer.escalation_unavailable


def test_an_outbox_that_cannot_store_the_outcome_costs_the_record_counted_never_the_answer(
        make_agent: MakeAgent) -> None:
    agent = make_agent(Mode.POST, post=0.0)
    outbox = agent._outbox
    pages = outbox._conn.execute("PRAGMA page_count").fetchone()[0]
    outbox._conn.execute(f"PRAGMA max_page_count={pages}")  # the disk is "full" once these pages are
    with pytest.raises(Unavailable):
        for n in range(10_000):
            outbox.put(outcome(f"filler-{n}"))
    stored = queued(agent)

    answer = agent.answer(QUESTION, SHORT)

    assert answer.side == "edge" and answer.text
    assert agent.outcomes_unrecorded == 1 and queued(agent) == stored
