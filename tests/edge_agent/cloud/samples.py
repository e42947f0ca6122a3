"""Requests, answers and policies for the cloud client's tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from confroute.contract import (
    ChatMessage,
    ChatRole,
    EscalationRequest,
    EscalationResponse,
    GenerationParams,
    ModelRef,
    Policy,
    RoutingMode,
    Thresholds,
)
from confroute.contract.answer import Timings, Usage
from confroute.contract.enums import FinishReason

EDGE_MODEL = ModelRef("smollm2-135m-instruct", "sha256:b1")
CLOUD_MODEL = ModelRef("cloud-echo", "1")
COHORT = "beta"
ISSUED = datetime(2025, 1, 1, tzinfo=timezone.utc)


def escalation(query_id: str = "q-1", question: str = "what is 2 + 2?") -> EscalationRequest:
    return EscalationRequest(
        query_id=query_id,
        device_id="device-1",
        cohort=COHORT,
        edge_model=EDGE_MODEL,
        messages=(ChatMessage(ChatRole.USER, question),),
        params=GenerationParams(max_tokens=16),
        mode=RoutingMode.POST,
        signals={"logprob_mean": -1.2},
        draft_answer="5",
        policy_version="v1",
    )


def answer(text: str) -> EscalationResponse:
    return EscalationResponse(
        text=text,
        finish_reason=FinishReason.STOP,
        model=CLOUD_MODEL,
        usage=Usage(prompt_tokens=5, completion_tokens=len(text.split())),
        timings=Timings(queue_ms=0.1, compute_ms=1.0, total_ms=1.1),
    )


def policy(version: str, minutes: int = 0, **changes: Any) -> Policy:
    """A policy for this device, issued ``minutes`` after ISSUED."""
    base = Policy(
        policy_version=version,
        edge_model=EDGE_MODEL,
        cohort=COHORT,
        mode=RoutingMode.POST,
        thresholds=Thresholds(pre=0.5, post=0.6, hybrid_low=0.3, hybrid_high=0.8),
        issued_at=ISSUED + timedelta(minutes=minutes),
        shadow_rate=0.05,
    )
    return replace(base, **changes)
