"""Edge agent benchmark: what the agent adds around the model, local vs escalated latency in the demo
setup (embedded Redis, tritonserver with the cloud model, cloud service), and outbox write throughput.

    python -m bench.edge_agent [--quick] [--json PATH] [--rounds N] [--escalations N] [--no-cloud]

``agent_overhead_pct``: per query, the agent's wall time (``AgentAnswer.latency_ms``: routing decisions,
signals, logging, the durable outbox write, around the generation) minus the generation's own time
(prefill + decode, measured by the engine inside the same call), as a share of the latter; median over
queries on the SmolLM2 8-bit bundle (the device default). Accounting inside one call keeps the machine's
load out of the ratio; ``bare_ms``/``agent_ms`` (separate calls, interleaved) are reported alongside.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.cpu import this_cpu
from bench.edgebench.put_rate import measure_put_rate
from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds
from confroute.engine import Engine, SamplingParams
from confroute.engine.engine import GenerationRun
from confroute.errors import InvalidPolicy
from confroute.paths import cache_dir, default_bundle_dir
from confroute.routing import default_policy
from confroute.signing import generate_key_pair, sign_policy
from confroute.signing.keys import PUBLIC_SUFFIX
from edge_agent.cloud import CloudConfig, PolicyKeeper
from edge_agent.config import AgentConfig
from edge_agent.core import AgentIdentity, EdgeAgent
from edge_agent.model import EdgeModel
from edge_agent.outbox import OutcomeQueue, QueueConfig

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _policy(model: EdgeModel, post: float) -> Policy:
    base = default_policy(ModelRef(model.model_id, model.version), "bench")
    return dataclasses.replace(base, policy_version=f"bench-{post}", mode=RoutingMode.POST, shadow_rate=0.0,
                               thresholds=Thresholds(pre=0.5, post=post, hybrid_low=0.2, hybrid_high=0.8),
                               issued_at=datetime.now(timezone.utc))


class _TimedModel(EdgeModel):
    """Keeps the last generation run, so its own timings can be read after the agent's answer."""

    last: GenerationRun | None = None

    def start(self, messages: Sequence[Mapping[str, Any]], params: SamplingParams,
              engine: Engine | None = None) -> GenerationRun:
        self.last = super().start(messages, params, engine)
        return self.last


def overhead(bundle: Path, rounds: int, tokens: int, workdir: Path) -> dict[str, float]:
    model = _TimedModel(bundle)
    keeper = PolicyKeeper(ModelRef(model.model_id, model.version), "bench")
    keeper.offer(_policy(model, post=0.0))  # every answer local: no cloud in this measurement
    params = SamplingParams(max_new_tokens=tokens, ignore_eos=True)
    with OutcomeQueue(QueueConfig(workdir / "overhead.db")) as queue:
        agent = EdgeAgent(model, keeper, queue, AgentIdentity("bench", "bench"))
        shares: list[float] = []

        def answer() -> None:
            latency = agent.answer(QUESTION, params).latency_ms
            assert model.last is not None
            generation = model.last.prefill_ms + model.last.result.decode_ms
            shares.append(100.0 * (latency - generation) / generation)

        bare, full = _interleave(lambda: model.answer(QUESTION, params), answer, rounds)
        agent.close()
    return {"bare_ms": statistics.median(bare), "agent_ms": statistics.median(full),
            "agent_overhead_pct": statistics.median(shares[1:])}


def _interleave(a: Callable[[], object], b: Callable[[], object], rounds: int) -> tuple[list[float], list[float]]:
    a(), b()  # warm-up
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(rounds):
        for fn, out in ((a, ta), (b, tb)):
            started = time.perf_counter()
            fn()
            out.append((time.perf_counter() - started) * 1000.0)
    return ta, tb


def end_to_end(edge_bundle: Path, cloud_bundle: Path, cache: Path, workdir: Path, n: int) -> dict[str, float]:
    """Local and escalated answers through the demo's stack (the policy forces each side).

    Devices apply only signed policies: the benchmark signs the ones it offers with a key of its own, which
    the device trusts next to the cloud service's (as a fleet operator's second key would be).
    """
    from demo.stack import TRITON_MODEL, StackConfig, cloud_stack
    from edge_agent.app import running_agent

    params = SamplingParams(max_new_tokens=32)
    signing_key = generate_key_pair(workdir / "bench-signing")
    # Identity is on in the demo's stack, as in a deployment: the benchmark's device is enrolled and presents its token.
    with cloud_stack(StackConfig(cache, workdir, cloud_bundle, None, None, TRITON_MODEL,
                                 devices=(("bench", "bench"),))) as stack:
        cloud = CloudConfig(target=stack.cloud_target, deadline_s=120, token=stack.tokens["bench"])
        config = AgentConfig(bundle=edge_bundle, device="cpu", threads=2, device_id="bench", cohort="bench",
                             state_dir=workdir / "edge", cloud=cloud,
                             privacy_patterns=(), never_escalate=False, http_host="127.0.0.1", http_port=0,
                             log_format="text",
                             policy_keys=(stack.policy_key, workdir / f"bench-signing{PUBLIC_SUFFIX}"))
        with running_agent(config) as agent:
            keeper = agent._policies
            model = agent._model
            times: dict[str, list[float]] = {"edge": [], "cloud": []}
            for post in (0.0, 1.0) * (n + 1):
                _apply(keeper, sign_policy(_policy(model, post), signing_key))
                answer = agent.answer(QUESTION, params)
                times[answer.side].append(answer.latency_ms)
    return {"local_p50_ms": statistics.median(times["edge"][1:]),
            "escalated_p50_ms": statistics.median(times["cloud"][1:]),
            "local_n": len(times["edge"]) - 1, "escalated_n": len(times["cloud"]) - 1}


def _apply(keeper: PolicyKeeper, policy: Policy) -> None:
    """A refused policy would leave one side unmeasured: stop with the device's reason instead."""
    verdict = keeper.offer(policy)
    if not verdict.applied:
        raise InvalidPolicy(f"the device refused the benchmark's policy {policy.policy_version}: {verdict.reason}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-cloud", action="store_true", help="skip the end-to-end part (no cloud bundle)")
    parser.add_argument("--rounds", type=int, help="overhead rounds (default 15; quick 5)")
    parser.add_argument("--escalations", type=int, help="answers timed per side end to end (default 8; quick 3)")
    args = parser.parse_args(argv)
    cache = cache_dir(os.environ)
    edge = default_bundle_dir(cache, quantized=True)
    cloud = cache / "bundles" / "qwen2.5-coder-0.5b-instruct-int8"
    rounds = args.rounds or (5 if args.quick else 15)
    with tempfile.TemporaryDirectory(prefix="bench-edge-agent-") as tmp:
        work = Path(tmp)
        _log("agent overhead")
        result: dict[str, Any] = overhead(edge, rounds, 32, work)
        _log("outbox write throughput")
        result["queue_writes_per_s"] = measure_put_rate(work / "rate.db", 1000 if args.quick else 3000).per_s
        if not args.no_cloud:
            _log("end to end through the demo stack")
            result.update(end_to_end(edge, cloud, cache, work, args.escalations or (3 if args.quick else 8)))
    result["load_avg_1m"] = os.getloadavg()[0]
    result.update(this_cpu().to_json())
    for key, value in result.items():
        print(f"{key:22} {value:10.2f}" if isinstance(value, float) else f"{key:22} {value:>10}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
