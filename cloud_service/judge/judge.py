"""The LLM judge: asks the cloud model (the escalation path's backend) whether the edge answer was good.

Any failure of the call (unavailable, overloaded, past its deadline, a bad reply) and any answer that
is not one unambiguous verdict yield a :class:`Verdict` without a label: the outcome stays unlabelled,
never mislabelled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cloud_service.judge.budget import CallBudget
from cloud_service.judge.config import JudgeConfig
from cloud_service.judge.prompts import PAIRWISE, SINGLE_WITH_REFERENCE, JudgePrompt
from cloud_service.judge.verdict import Verdict, pairwise_verdict, single_verdict
from cloud_service.ports import InferenceBackend
from confroute.contract.common import ModelRef
from confroute.contract.enums import RoutingMode
from confroute.contract.escalation import EscalationRequest, GenerationParams
from confroute.errors import ConfrouteError

logger = logging.getLogger(__name__)

JUDGE_CALLER = ModelRef("confroute-judge", "1")


class Judge:
    """Compares an edge answer with the cloud answer to the same question, within its call budget."""

    def __init__(self, backend: InferenceBackend, config: JudgeConfig, prompt: JudgePrompt | None = None,
                 on_call: Callable[[str], None] = lambda _: None) -> None:
        self._backend = backend
        self._on_call = on_call  # each call's result: correct, incorrect, no_verdict or failed
        self._config = config
        self._prompt = prompt or (SINGLE_WITH_REFERENCE if config.method == "single" else PAIRWISE)
        self.budget = CallBudget(config.max_in_flight, config.calls_per_second)

    async def verdict(self, query_id: str, question: str, edge_answer: str, cloud_answer: str) -> Verdict:
        """The judge's verdict on the edge answer, or a label-less verdict saying what went wrong."""
        request = EscalationRequest(
            query_id=f"judge:{query_id}",
            device_id="confroute-judge",
            cohort="",
            edge_model=JUDGE_CALLER,
            messages=self._prompt.messages(question, edge_answer, cloud_answer),
            params=GenerationParams(max_tokens=self._config.max_tokens, temperature=0.0),
            mode=RoutingMode.POST,
        )
        async with self.budget.call():
            try:
                response = await self._backend.generate(request, self._config.timeout_s)
            except ConfrouteError as exc:
                logger.info("judge call for %s failed, left unlabelled: %s", query_id, exc)
                self._on_call("failed")
                return Verdict(None, f"judge call failed: {type(exc).__name__}: {exc}")
        if self._prompt.kind == "pairwise":
            verdict = pairwise_verdict(response.text)
        else:
            verdict = single_verdict(response.text, self._config.correct_at, self._config.wrong_at)
        self._on_call("no_verdict" if verdict.label is None else verdict.label.value)
        return verdict
