"""``make demo [ARGS=...]``: builds what is missing (edge and cloud bundles), starts the cloud side, and
routes a mixed set of questions through an edge agent, with a live table.

    make demo                                   # everything embedded, on loopback ports
    make demo ARGS="--redis-url redis://host:6379/0 --triton-url 127.0.0.1:8001"
    make demo ARGS="--questions my.jsonl --max-tokens 128"
    make demo ARGS="--no-learning"              # one pass only, without the learning round

It answers the questions with the edge agent (the out-of-the-box router), prints per question what each side
alone got right, runs one learning round with the product's own commands (feedback labels, ``cloud-service
judge``, ``retrain`` and ``recalibrate`` ``--once``; the new policy reaches the agent through its policy
watch: see demo/learning.py), answers again with what the round pushed, and compares the two routed passes with
always-edge and always-cloud.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from confroute.bundle.store import needs_export
from confroute.engine import SamplingParams
from confroute.errors import ConfrouteError
from confroute.paths import cache_dir, default_bundle_dir
from confroute.probes.shipped import install_shipped
from demo import learning
from demo.baselines import SideResults, answer_alone, comparison, per_side
from demo.stack import TRITON_MODEL, StackConfig, cloud_stack
from demo.table import HEADER, row, summary
from edge_agent.answer import AgentAnswer
from edge_agent.app import running_agent
from edge_agent.cloud import CloudConfig
from edge_agent.config import AgentConfig
from edge_agent.core import EdgeAgent

QUESTIONS = Path(__file__).with_name("questions.jsonl")
CLOUD_BUNDLE = "qwen2.5-coder-0.5b-instruct-int8"


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    cache: Path
    edge_bundle: Path
    cloud_bundle: Path
    questions: Path
    max_tokens: int
    redis_url: str | None
    triton_url: str | None
    triton_model: str
    keep_logs: bool
    baselines: bool = True
    learning: bool = True


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> DemoConfig:
    parser = argparse.ArgumentParser(prog="make demo ARGS=...", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", help="use this Redis instead of starting an embedded one")
    parser.add_argument("--triton-url", help="use this Triton (gRPC host:port) instead of starting one")
    parser.add_argument("--triton-model", default=TRITON_MODEL, help=f"model to call there (default {TRITON_MODEL})")
    parser.add_argument("--edge-bundle", type=Path,
                        help="edge bundle (default: SmolLM2-135M 8-bit, with the shipped router probe)")
    parser.add_argument("--cloud-bundle", type=Path, help=f"cloud bundle (default: {CLOUD_BUNDLE})")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="JSONL with 'question' and 'gold'")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs and print where")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip answering every question with each side alone (always-edge / always-cloud)")
    parser.add_argument("--no-learning", action="store_true",
                        help="skip the learning round (feedback, judge, retrain, recalibrate, push) and the 2nd pass")
    args = parser.parse_args(argv)
    cache = cache_dir(env)
    return DemoConfig(cache, args.edge_bundle or default_bundle_dir(cache, True),
                      args.cloud_bundle or cache / "bundles" / CLOUD_BUNDLE, args.questions, args.max_tokens,
                      args.redis_url, args.triton_url, args.triton_model, args.keep_logs, not args.no_baselines,
                      not args.no_learning)


def ensure_bundles(config: DemoConfig) -> None:
    """Builds the default bundles in child processes (the export tooling never loads into the agent)."""
    if needs_export(config.edge_bundle):
        print("[demo] building the edge model SmolLM2-135M-Instruct (first run, or an older graph: ~1 min)",
              flush=True)
        subprocess.run([sys.executable, "-m", "confroute.modelkit.cli", "--int8"], check=True,
                       stdout=subprocess.DEVNULL)
    # a bundle built before the router probe shipped gets it now (one small file, no re-export)
    print(f"[demo] {install_shipped(config.edge_bundle)}", flush=True)
    if config.triton_url is None and needs_export(config.cloud_bundle):
        print("[demo] building the cloud model (first run: ~500 MB download, a few minutes)", flush=True)
        subprocess.run([sys.executable, "-m", "confroute.modelkit.cloud_model"], check=True)


TEXT_TTL_S = 600  # the service holds judgeable texts for the judge this long at most (then Redis drops them)
COHORT = "demo"


def run(config: DemoConfig) -> None:
    ensure_bundles(config)
    with contextlib.ExitStack() as stack:
        if config.keep_logs:
            workdir = Path(tempfile.mkdtemp(prefix="confroute-demo-"))
            stack.callback(print, f"[demo] the services' logs are in {workdir}")
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="confroute-demo-")))
        cloud = stack.enter_context(cloud_stack(StackConfig(
            config.cache, workdir, config.cloud_bundle, config.redis_url, config.triton_url, config.triton_model,
            devices=(("demo-device", COHORT),), text_ttl_s=TEXT_TTL_S if config.learning else 0)))
        agent_config = AgentConfig(
            bundle=config.edge_bundle, device="cpu", threads=2, device_id="demo-device", cohort=COHORT,
            state_dir=workdir / "edge",
            cloud=CloudConfig(target=cloud.cloud_target, deadline_s=120.0, token=cloud.tokens["demo-device"]),
            privacy_patterns=(), never_escalate=False, http_host="127.0.0.1", http_port=0, log_format="text",
            policy_keys=(cloud.policy_key,))
        agent = stack.enter_context(running_agent(agent_config))
        questions = [json.loads(line) for line in config.questions.read_text("utf-8").splitlines() if line.strip()]
        params = SamplingParams(max_new_tokens=config.max_tokens)
        round_config = learning.RoundConfig(cloud.redis_url, cloud.triton_url, config.triton_model, cloud.signing_key,
                                            config.edge_bundle, agent.policy.edge_model, COHORT)
        if config.learning:
            _start_policy(round_config, agent)
        answers = _answer_all(agent, questions, params)
        sides = _baselines(config, questions, answers, params) if config.baselines else None
        runs = [("routed", answers)]
        if config.learning and learning.learning_round(round_config, agent, questions, answers):
            print("[demo] answering again with the policy the round pushed", flush=True)
            runs = [("routed before", answers), ("routed after", _answer_all(agent, questions, params))]
        elif config.learning:
            print("[demo] the round published nothing: the agent's router is unchanged, no second pass", flush=True)
    print("\n".join(comparison(questions, runs, sides)))


def _start_policy(config: learning.RoundConfig, agent: EdgeAgent) -> None:
    """The operator publishes the out-of-the-box values for the demo's partition (later policies keep its mode)."""
    version = learning.publish_start_policy(config, agent.policy)
    if not learning.wait_for_policy(agent, lambda p: p.policy_version == version):
        print(f"[demo] the agent has not received the starting policy {version} within 60 s", flush=True)
    print(f"[demo] the operator published the built-in values; the agent runs {learning.describe(agent.policy)}",
          flush=True)


def _answer_all(agent: EdgeAgent, questions: list[dict[str, str]], params: SamplingParams) -> list[AgentAnswer]:
    print(HEADER, flush=True)
    answers: list[AgentAnswer] = []
    for n, question in enumerate(questions, 1):
        answers.append(agent.answer([{"role": "user", "content": question["question"]}], params))
        print(row(n, question, answers[-1]), flush=True)
    print(summary(questions, answers))
    print("[demo] side! = escalation wanted but the cloud was unavailable; conf/thr = the routing decision")
    return answers


def _baselines(config: DemoConfig, questions: list[dict[str, str]], answers: list[AgentAnswer],
               params: SamplingParams) -> SideResults:
    print("[demo] answering every question with each side alone (always-edge, always-cloud) ...", flush=True)
    cloud = None if needs_export(config.cloud_bundle) else answer_alone(config.cloud_bundle, questions, params)
    sides = SideResults(answer_alone(config.edge_bundle, questions, params), cloud)
    print("\n".join(per_side(answers, sides)))
    return sides


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv, dict(os.environ))
    started = time.monotonic()
    try:
        run(config)
        print(f"[demo] done in {time.monotonic() - started:.0f} s", flush=True)
    except KeyboardInterrupt:
        print("\n[demo] interrupted: everything started has been stopped")
        return 130
    except (ConfrouteError, subprocess.CalledProcessError) as exc:
        print(f"[demo] error: {exc}", file=sys.stderr)
        return 2
    return 0
