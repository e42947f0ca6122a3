"""The demo's learning round: judge -> labels -> retrain -> recalibrate -> push, with the product's own commands.

Each step is the command an operator runs (``cloud-service judge|retrain|recalibrate --once``), started as a
child process like the rest of the cloud side, and the demo prints what it said:

1. **Judge** (``--edge-bundle``): labels the queries whose texts the service holds (shadowed answers,
   post-mode escalations; ``--retain-text`` with a TTL) and extracts their probe features from the cloud's
   copy of the edge build, then deletes the texts.
2. **Labels.** The demo plays a user who knows the answers: it rates every answer of the first pass
   (``good`` when the reference appears in it) through the agent's feedback desk, the one behind the
   device API's ``POST /v1/feedback``; the ratings travel to the cloud as ``user_feedback`` labels
   (a query the judge labelled keeps its label: the first one counts). The judge goes first because it
   extracts features only for the queries it judges.
3. **Retrain**: refits the router probe from the features and labels, or says why it refused (with a
   handful of questions: too few examples; the refusal is the product's, printed as it comes).
4. **Recalibrate**: a new policy from the labelled outcomes, pushed to the agent through the policy watch.
   The demo's 11 labels are far below a deployment's minimums (200 labels, effective size 100), so the
   demo lowers them (:data:`RECALIBRATE_KNOBS`, printed) and publishes to every device at once (no canary):
   a policy from so few labels shows the mechanism, not a trustworthy router.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from confroute.contract.common import ModelRef
from confroute.contract.policy import Policy
from confroute.errors import Unavailable
from demo.table import correct
from edge_agent.answer import AgentAnswer
from edge_agent.core import EdgeAgent

# quality target: P(edge wrong and kept) <= alpha at confidence 1 - delta, from far fewer labels than a
# deployment would wait for (cloud_service.calibration.config.RecalibrationConfig has the real defaults)
RECALIBRATE_KNOBS = ("--target", "quality", "--alpha", "0.3", "--delta", "0.2", "--min-labelled", "5",
                     "--min-effective-size", "4", "--canary-share", "0")
WORKER_TIMEOUT_S = 600.0


@dataclasses.dataclass(frozen=True)
class RoundConfig:
    redis_url: str
    triton_url: str
    triton_model: str
    signing_key: Path
    edge_bundle: Path
    edge_model: ModelRef
    cohort: str


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def cloud_json(*args: str, timeout_s: float = WORKER_TIMEOUT_S) -> list[dict[str, Any]]:
    """Runs ``cloud-service ARGS`` and returns the JSON objects it printed, one a line."""
    try:
        done = subprocess.run([sys.executable, "-m", "cloud_service.cli", *args], capture_output=True, text=True,
                              check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"cloud-service {args[0]} did not finish within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        raise Unavailable(f"cloud-service {args[0]} failed: {done.stderr.strip()[-2000:]}")
    return [value for value in map(_json_line, done.stdout.splitlines()) if value is not None]


def _json_line(line: str) -> dict[str, Any] | None:
    """The object on this line, or None (other output, or a line of a multi-line document)."""
    if not (line.startswith("{") and line.rstrip().endswith("}")):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def publish_start_policy(config: RoundConfig, policy: Policy) -> str:
    """``cloud-service policy set`` of ``policy``'s mode and thresholds for the device's partition (what an
    operator does first): the partition then has a current policy, whose mode later policies keep."""
    version = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.000Z"
    t = policy.thresholds
    cloud_json("policy", "set", "--redis-url", config.redis_url, "--policy-signing-key", str(config.signing_key),
               "--policy-version", version, "--edge-model-id", config.edge_model.id,
               "--edge-model-version", config.edge_model.version, "--cohort", config.cohort,
               "--mode", policy.mode.value, "--pre", str(t.pre), "--post", str(t.post),
               "--hybrid-low", str(t.hybrid_low), "--hybrid-high", str(t.hybrid_high),
               "--shadow-rate", str(policy.shadow_rate))
    return version


def wait_for_policy(agent: EdgeAgent, changed: Callable[[Policy], bool], timeout_s: float = 60.0) -> bool:
    """Waits until the agent's policy satisfies ``changed`` (the watch delivered it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if changed(agent.policy):
            return True
        time.sleep(0.25)
    return False


OWN_PROBE = "the bundle's own"


def describe(policy: Policy) -> str:
    t = policy.thresholds
    return (f"policy {policy.policy_version}: mode {policy.mode.value}, pre {t.pre:.3f}, post {t.post:.3f}, "
            f"hybrid band [{t.hybrid_low:.3f}, {t.hybrid_high:.3f}), shadow rate {policy.shadow_rate:g}, "
            f"calibration map {'fitted' if policy.calibration.x else 'none'}, "
            f"router probe {policy.probe_version or OWN_PROBE}")


def rate_answers(agent: EdgeAgent, questions: Sequence[dict[str, str]], answers: Sequence[AgentAnswer]) -> set[str]:
    """Rates every answer by its reference (the feedback desk of ``POST /v1/feedback``); returns the query ids
    whose rating travels to the cloud as a label (answers the edge gave: a rating of the cloud's answer is
    no label of the edge's, and stays on the device)."""
    if agent.feedback is None:
        raise Unavailable("this agent takes no feedback")
    uploaded: set[str] = set()
    for question, answer in zip(questions, answers, strict=True):
        rating = "good" if correct(answer.text, question.get("gold", "")) else "bad"
        if agent.feedback.rate(answer.query_id, rating).value == "recorded":
            uploaded.add(answer.query_id)
    return uploaded


def wait_for_labels(config: RoundConfig, query_ids: set[str], timeout_s: float = 60.0) -> int:
    """Polls the outcome log (``cloud-service outcomes tail``) until every one of ``query_ids`` has a label
    (from any source: the first label of a query is the one that counts); returns how many have one."""
    deadline = time.monotonic() + timeout_s
    landed: set[str] = set()
    while time.monotonic() < deadline:
        events = cloud_json("outcomes", "tail", "--redis-url", config.redis_url, "--once", "--json",
                            "--last", "1000", timeout_s=60.0)
        landed = {str(event.get("query_id")) for event in events if event.get("kind") == "label"} & query_ids
        if landed == query_ids:
            break
        time.sleep(1.0)
    return len(landed)


def judge(config: RoundConfig) -> dict[str, Any]:
    lines = cloud_json("judge", "--once", "--redis-url", config.redis_url, "--triton-url", config.triton_url,
                       "--triton-model", config.triton_model, "--edge-bundle", str(config.edge_bundle),
                       "--log-level", "WARNING")
    return lines[-1] if lines else {}


def retrain(config: RoundConfig) -> list[dict[str, Any]]:
    """A probe it publishes travels signed with a policy calibrated for it, to every device at once here."""
    return cloud_json("retrain", "--once", "--redis-url", config.redis_url, "--edge-bundle", str(config.edge_bundle),
                      "--policy-signing-key", str(config.signing_key), "--canary-share", "0", "--log-level", "ERROR")


def recalibrate(config: RoundConfig) -> list[dict[str, Any]]:
    return cloud_json("recalibrate", "--once", "--redis-url", config.redis_url, "--policy-signing-key",
                      str(config.signing_key), *RECALIBRATE_KNOBS, "--log-level", "WARNING")


def learning_round(config: RoundConfig, agent: EdgeAgent, questions: Sequence[dict[str, str]],
                   answers: Sequence[AgentAnswer]) -> bool:
    """Runs the round and prints each step; True when the agent now runs a policy the round published."""
    before = agent.policy
    say("learning round: judge -> feedback -> retrain -> recalibrate -> push")
    judged = _compact(judge(config))
    say(f"judge --once: {judged}" + ("" if judged != NOTHING_JUDGED else
        f" (texts are held for shadowed answers and post-mode escalations; {before.mode.value}-mode escalations "
        f"carry no edge draft, and the {before.shadow_rate:g} shadow sample took none)"))
    uploaded = rate_answers(agent, questions, answers)
    good = sum(correct(a.text, q.get("gold", "")) for q, a in zip(questions, answers, strict=True))
    say(f"feedback: {len(answers)} ratings through the device's feedback desk (POST /v1/feedback): {good} good, "
        f"{len(answers) - good} bad; {len(uploaded)} of them rate answers the edge gave and travel as labels "
        f"(a rating of the cloud's answer says nothing about the edge's; a query the judge labelled keeps the "
        f"judge's label)")
    labelled = wait_for_labels(config, uploaded)
    say(f"rated edge answers with a label in the cloud's log: {labelled} of {len(uploaded)}")
    for line in retrain(config) or [{"status": "idle", "reason": "no partition with new labels"}]:
        say(f"retrain --once: {line.get('status')}"
            + (f", probe {line['probe']}" if line.get("probe") else "")
            + f" ({line.get('examples', 0)} examples; {line.get('reason') or 'better on the held-out slice'})")
    say("recalibrate --once with the demo's knobs " + " ".join(RECALIBRATE_KNOBS)
        + " (a deployment waits for 200 labels, effective size 100, and canaries 10% of devices)")
    published = False
    for line in recalibrate(config):
        say(recalibration_line(line))
        published = published or line.get("status") == "published"
    if published and not wait_for_policy(agent, lambda p: p.policy_version != before.policy_version):
        say("the agent has not received the new policy within 60 s")
    say(f"before the round the agent ran {describe(before)}")
    say(f"now the agent runs {describe(agent.policy)}")
    return agent.policy.policy_version != before.policy_version


def recalibration_line(line: dict[str, Any]) -> str:
    """What one partition's ``recalibrate --once`` line says: published (its version) or refused (why),
    on how many labels, and the hybrid band it placed."""
    head = (f"recalibrate: published {line.get('version')}" if line.get("status") == "published"
            else f"recalibrate: {line.get('status')}: {line.get('reason')}")
    facts = [f"{line.get('labelled', 0):.0f} labelled post scores (answers generated on the device), "
             f"effective size {line.get('effective_size', 0)}"]
    if "pre_recalibrated" in line:
        facts.append(f"pre threshold recalibrated: {'yes' if line['pre_recalibrated'] else 'no, kept'}")
    band = line.get("hybrid_band")
    if isinstance(band, dict):
        facts.append(f"hybrid band [{band.get('low')}, {band.get('high')})")
    return f"{head} ({'; '.join(facts)})"


NOTHING_JUDGED = "nothing to judge"


def _compact(outcomes: dict[str, Any]) -> str:
    shown = {key: value for key, value in sorted(outcomes.items()) if value}
    return ", ".join(f"{key} {value}" for key, value in shown.items()) or NOTHING_JUDGED
