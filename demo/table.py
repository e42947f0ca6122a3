"""The demo's live table and summary (plain text, one row as each answer lands)."""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence

from edge_agent.answer import AgentAnswer

HEADER = f"{'#':>2}  {'question':38}  {'side':5}  {'conf':>5}  {'thr':>5}  {'ms':>6}  ok  answer"


def cell(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def correct(answer: str, gold: str) -> bool:
    """Lenient: the gold answer appears in the answer (numbers compared without thousands separators)."""
    def norm(s: str) -> str:
        return re.sub(r"(?<=\d),(?=\d{3})", "", s).lower()

    return norm(gold) in norm(answer)


def row(n: int, question: Mapping[str, str], answer: AgentAnswer) -> str:
    conf = "-" if answer.confidence is None else f"{answer.confidence:.2f}"
    thr = "-" if answer.threshold is None else f"{answer.threshold:.2f}"
    side = answer.side + ("!" if answer.escalation_unavailable else "")
    mark = "✓" if correct(answer.text, question.get("gold", "")) else "✗"
    return (f"{n:>2}  {cell(question['question'], 38):38}  {side:5}  {conf:>5}  {thr:>5}  "
            f"{answer.latency_ms:6.0f}  {mark:2}  {cell(answer.text, 60)}")


def summary(questions: Sequence[Mapping[str, str]], answers: Sequence[AgentAnswer]) -> str:
    lines = []
    cloud = [a for a in answers if a.side == "cloud"]
    lines.append(f"escalation rate {len(cloud)}/{len(answers)} = {len(cloud) / max(len(answers), 1):.0%}"
                 + (f"; {sum(a.escalation_unavailable for a in answers)} wanted the cloud but it was unavailable"
                    if any(a.escalation_unavailable for a in answers) else ""))
    for side in ("edge", "cloud"):
        picked = [(q, a) for q, a in zip(questions, answers, strict=True) if a.side == side]
        if picked:
            ms = statistics.mean(a.latency_ms for _, a in picked)
            right = sum(correct(a.text, q.get("gold", "")) for q, a in picked)
            lines.append(f"{side:5}: {len(picked)} answers, mean latency {ms:.0f} ms, {right} match the reference")
    return "\n".join(lines)
