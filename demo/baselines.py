"""What the demo's questions get from each side alone: always-edge and always-cloud, the routed run's yardsticks.

Both models answer every question directly (greedy, the same token budget as the routed run) with the same
engine the agent and the cloud's Triton model run, so the comparison is per question: which side was right,
and whether the router sent up the ones the edge got wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from confroute.engine import Engine, RuntimeOptions, SamplingParams
from demo.table import correct
from edge_agent.answer import AgentAnswer


@dataclasses.dataclass(frozen=True)
class SideResults:
    """Per question: whether the edge alone and the cloud alone (None: not measured) answer right."""

    edge: tuple[bool, ...]
    cloud: tuple[bool, ...] | None


def answer_alone(bundle: Path, questions: Sequence[Mapping[str, str]], params: SamplingParams) -> tuple[bool, ...]:
    engine = Engine(bundle, RuntimeOptions(intra_op_threads=2))
    return tuple(correct(engine.chat([{"role": "user", "content": q["question"]}], params).text, q.get("gold", ""))
                 for q in questions)


def per_side(answers: Sequence[AgentAnswer], sides: SideResults) -> list[str]:
    """One line per question: edge alone, cloud alone, where the router sent it, and whether that was right."""
    lines = [f"{'#':>2}  {'edge':4}  {'cloud':5}  {'routed':6}  verdict"]
    for n, answer in enumerate(answers):
        edge = sides.edge[n]
        cloud = None if sides.cloud is None else sides.cloud[n]
        lines.append(f"{n + 1:>2}  {_mark(edge):4}  {_mark(cloud):5}  {answer.side:6}  "
                     f"{_verdict(edge, cloud, answer.side == 'cloud')}")
    return lines


def comparison(questions: Sequence[Mapping[str, str]], runs: Sequence[tuple[str, Sequence[AgentAnswer]]],
               sides: SideResults | None) -> list[str]:
    """Right answers and cloud calls of each routed run (name, answers) and of each side alone (when measured)."""
    n = len(questions)
    lines = [f"{'policy':14}{'right':>8}{'cloud calls':>13}"]
    for name, answers in runs:
        routed = sum(correct(a.text, q.get("gold", "")) for q, a in zip(questions, answers, strict=True))
        calls = sum(a.side == "cloud" for a in answers)
        lines.append(f"{name:14}{f'{routed}/{n}':>8}{f'{calls}/{n}':>13}")
    if sides is None:
        return lines
    lines.append(f"{'always-edge':14}{f'{sum(sides.edge)}/{n}':>8}{f'0/{n}':>13}")
    if sides.cloud is not None:
        lines.append(f"{'always-cloud':14}{f'{sum(sides.cloud)}/{n}':>8}{f'{n}/{n}':>13}")
        helps = [i for i in range(n) if not sides.edge[i] and sides.cloud[i]]
        for name, answers in runs:
            sent = sum(answers[i].side == "cloud" for i in helps)
            lines.append(f"the cloud helps on {len(helps)} question(s) (edge wrong, cloud right); "
                         f"{name} sent {sent} of them up")
    return lines


def _mark(value: bool | None) -> str:
    return "-" if value is None else "✓" if value else "✗"


def _verdict(edge: bool, cloud: bool | None, escalated: bool) -> str:
    if cloud is None:
        return "escalated" if escalated else "kept"
    if not edge and cloud:
        return "escalated: gained" if escalated else "kept: missed a gain"
    if edge and not cloud:
        return "escalated: lost" if escalated else "kept: right call"
    return "escalated: no gain (a wasted call)" if escalated else "kept: nothing to gain"
