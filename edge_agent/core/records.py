"""Building the wire-level requests and outcome records of one query (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from confroute.contract import (
    AnsweredBy,
    ChatMessage,
    ChatRole,
    Decision,
    EscalationRequest,
    GenerationParams,
    Latency,
    ModelRef,
    OutcomeRecord,
    Policy,
)
from confroute.engine import SamplingParams
from confroute.errors import InvalidInput

_ROLES = {role.value: role for role in ChatRole}


def chat_messages(messages: Sequence[Mapping[str, str]]) -> tuple[ChatMessage, ...]:
    out = []
    for i, message in enumerate(messages):
        role = _ROLES.get(str(message.get("role", "")))
        if role is None:
            raise InvalidInput(f"messages[{i}].role must be one of {sorted(_ROLES)}", field=f"messages[{i}].role")
        out.append(ChatMessage(role, str(message.get("content", ""))))
    return tuple(out)


def generation_params(params: SamplingParams) -> GenerationParams:
    return GenerationParams(max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p,
                            seed=params.seed, stop=params.stop)


def escalation_request(query: QueryContext, signals: Mapping[str, float], draft: str | None, shadow: bool,
                       propensity: float) -> EscalationRequest:
    return EscalationRequest(
        query_id=query.query_id, device_id=query.device_id, cohort=query.cohort, edge_model=query.edge_model,
        messages=chat_messages(query.messages), params=generation_params(query.params), mode=query.policy.mode,
        signals=dict(signals), draft_answer=draft, policy_version=query.policy.policy_version, shadow=shadow,
        propensity=propensity)


class QueryContext:
    """What stays fixed for one query: ids, prompt, parameters and the policy it is routed under."""

    def __init__(self, query_id: str, device_id: str, cohort: str, edge_model: ModelRef,
                 messages: Sequence[Mapping[str, str]], params: SamplingParams, policy: Policy,
                 started: datetime) -> None:
        self.query_id = query_id
        self.device_id = device_id
        self.cohort = cohort
        self.edge_model = edge_model
        self.messages = messages
        self.params = params
        self.policy = policy
        self.started = started


def outcome_record(query: QueryContext, *, decision: Decision, answered_by: AnsweredBy, latency: Latency,
                   finished: datetime, signals: Mapping[str, float], shadow: bool, propensity: float,
                   cloud_model: ModelRef | None) -> OutcomeRecord:
    return OutcomeRecord(
        query_id=query.query_id, device_id=query.device_id, cohort=query.cohort, edge_model=query.edge_model,
        mode=query.policy.mode, decision=decision, answered_by=answered_by, latency=latency,
        started_at=query.started, finished_at=max(finished, query.started), cloud_model=cloud_model,
        signals=dict(signals), policy_version=query.policy.policy_version, shadow=shadow, propensity=propensity)
