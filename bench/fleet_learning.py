"""bench.fleet_learning: does the fleet's learning pipeline lose anything against a router trained offline?

One run, on the real 8-bit SmolLM2 bundle and a real redis-server (AOF):

1. The router recipe's questions (the arithmetic ladder, ARC-Easy and PIQA from ``../shared/data``) with
   the recorded cloud outcomes shipped beside the default probe; the edge's greedy answers (32 tokens)
   scored against gold; half the questions are the fleet's stream, half held out (never seen by anything).
2. **Offline gold**: the router probe fitted directly on the stream's TBG features and route labels
   (``select_probe``, as ``confroute-probe router`` does).
3. **Learned online, gold labels**: the same stream through the fleet's pipeline: the service's records of
   the shadowed queries hold their texts (``--retain-text``, TTL ``--text-ttl-s``), ``JudgeWorker`` judges
   them with a *gold* judge (a backend that answers each query's route label: the perfect judge), writes the
   labels, extracts the features with the edge bundle (``FeatureExtractor``: fp16, from the held texts) and
   deletes the texts; ``RetrainWorker`` refits and publishes the probe.
4. Both fits (the pipeline's whether or not it was published: the retrain worker compares it with the
   bundle's installed probe), the untrained start and the installed probe are scored on the held-out half: APGR
   and CPT(50%) (RouteLLM's 10-quantile curves, ``confroute.calibration.routing_curve``).
5. Text left in Redis: after the judge (0 expected), and for queries held but never judged, after their TTL.

Not measured here (reported under ``not_measured``, never filled with guesses): judge labels from the local
judge model (``apgr_learned``, ``cpt50_learned``: needs the cloud model behind tritonserver as the judge),
the local TTFT of the default mode (``bench.edge_serving`` measures serving), probe+policy delivery to
agents (probes are not delivered to devices yet).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.cloudbench.processes import RedisProcess
from bench.cpu import this_cpu
from cloud_service.judge import Judge, JudgeConfig, JudgeWorker
from cloud_service.ops.text_audit import text_bytes
from cloud_service.outcomes import RedisOutcomeLog
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.redis_client import connect
from cloud_service.retrain.config import RetrainConfig
from cloud_service.retrain.features import FeatureExtractor, FeatureStore
from cloud_service.retrain.worker import RetrainWorker
from confroute.bundle.probe import read_probe
from confroute.bundle.store import load_bundle
from confroute.calibration import routing_curve
from confroute.contract import ModelRef
from confroute.contract.answer import EscalationResponse, StreamEvent, Timings, Usage
from confroute.contract.enums import AnsweredBy, Decision, FinishReason, Label, LabelSource, RoutingMode
from confroute.contract.escalation import EscalationRequest
from confroute.contract.outcome import Latency, OutcomeRecord
from confroute.engine import Engine
from confroute.errors import InvalidInput
from confroute.paths import cache_dir, default_bundle_dir
from confroute.probes.features import CollectOptions, collect
from confroute.probes.labels import edge_correct, route_labels
from confroute.probes.router import RouterRecipe, item_key, read_outcomes, recipe_items
from confroute.probes.selection import FeatureLayout, ProbeFit, select_probe
from confroute.probes.sets import Item, split

REPO = Path(__file__).resolve().parents[1]
COHORT = "bench"
DECOYS = 8


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: Path
    edge_bundle: Path
    n: int | None
    test_frac: float
    max_new_tokens: int
    text_ttl_s: int
    seed: int
    json_path: Path | None
    command: str


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_learning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="120 questions (a few minutes)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--data", type=Path, help="the shared data folder (default ../shared/data)")
    parser.add_argument("--edge-bundle", type=Path, help="default: SmolLM2-135M 8-bit (build it with make demo)")
    parser.add_argument("--n", type=int, help="questions drawn from the recipe (default all 360; quick 120)")
    parser.add_argument("--text-ttl-s", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = args.data or Path(os.environ.get("CONFROUTE_DATA_DIR", REPO.parent / "shared" / "data"))
    return Config(data, args.edge_bundle or default_bundle_dir(cache_dir(os.environ), quantized=True),
                  args.n or (120 if args.quick else None), 0.5, 32, args.text_ttl_s, args.seed, args.json,
                  "python -m bench.fleet_learning" + (" --quick" if args.quick else ""))


@dataclasses.dataclass(frozen=True)
class Stream:
    """The questions with their outcomes: TBG features (offline), greedy answers, both sides' correctness."""

    items: list[Item]
    tbg: npt.NDArray[np.float32]
    answers: list[str]
    edge: npt.NDArray[np.float64]
    cloud: npt.NDArray[np.float64]

    @property
    def route(self) -> npt.NDArray[np.int8]:
        return route_labels(self.edge.astype(bool), self.cloud.astype(bool)).labels


def load_stream(config: Config, engine: Engine) -> Stream:
    items = recipe_items(config.data_dir, RouterRecipe())
    if config.n is not None and config.n < len(items):
        keep = np.random.default_rng(config.seed).choice(len(items), config.n, replace=False)
        items = [items[i] for i in sorted(keep)]
    outcomes, _ = read_outcomes()
    examples = [item.example for item in items]
    collected = collect(engine, examples, CollectOptions(max_new_tokens=config.max_new_tokens), _progress("edge"))
    edge = edge_correct(examples, collected.answers).astype(np.float64)
    cloud = np.array([outcomes.correct[item_key(item)] for item in items], np.float64)
    return Stream(items, collected.tbg, collected.answers, edge, cloud)


def prompt_text(item: Item) -> str:
    """The question as the service holds it (``role: content`` lines, as ``EscalationServicer`` writes it)."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in item.example.messages)


def held_record(edge: ModelRef, query_id: str, item: Item, answer: str) -> OutcomeRecord:
    """The service's record of a shadowed query, texts in hand (the edge answer as the draft)."""
    now = _now()
    return OutcomeRecord(
        query_id=query_id, device_id="bench-device", cohort=COHORT, edge_model=edge, mode=RoutingMode.PRE,
        decision=Decision.LOCAL, answered_by=AnsweredBy.EDGE, latency=Latency(edge_ms=0.0, total_ms=0.0),
        started_at=now, finished_at=now, signals={}, policy_version="bench", shadow=True, propensity=1.0,
        cloud_model=ModelRef("recorded-cloud", "1"), prompt_text=prompt_text(item),
        edge_draft_text=answer or "(empty)", answer_text="(the cloud's answer)", label=Label.UNKNOWN,
        label_source=LabelSource.NONE)


class GoldJudge:
    """An inference backend that judges as a perfect judge would: each query's gold route label."""

    def __init__(self, keep: dict[str, bool]) -> None:
        self._keep = keep

    async def generate(self, request: EscalationRequest, timeout_s: float) -> EscalationResponse:
        rating = 10 if self._keep[request.query_id.removeprefix("judge:")] else 1
        return EscalationResponse(f"Rating: [[{rating}]]", FinishReason.STOP, ModelRef("gold-judge", "1"),
                                  Usage(0, 0), Timings(0.0, 0.0, 0.0))

    def stream(self, request: EscalationRequest, timeout_s: float) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError("the gold judge answers whole")

    async def close(self) -> None:
        return None


async def learn_online(config: Config, engine: Engine, stream: Stream, indices: list[int],
                       redis_url: str) -> dict[str, Any]:
    """The pipeline over the stream's questions; returns the published probe and the text audit."""
    edge = ModelRef(engine.manifest.model_id, engine.manifest.build_version)
    log = OutcomeLogConfig(url=redis_url, retain_text=True, text_ttl_s=config.text_ttl_s)
    records = [held_record(edge, f"q-{i}", stream.items[i], stream.answers[i]) for i in indices]
    async with RedisOutcomeLog(log) as outcome_log:
        for record in records:
            outcome_log.record(record)
    client = connect(redis_url, connect_timeout_s=1.0, command_timeout_s=30.0)
    try:
        judge_config = JudgeConfig(max_in_flight=4, calls_per_second=1e6)
        judge = Judge(GoldJudge({f"q-{i}": bool(stream.route[i]) for i in indices}), judge_config)
        extractor = FeatureExtractor(engine, FeatureStore(client, log, max_features=100_000))
        started = time.perf_counter()
        judged = await JudgeWorker(client, log, judge, judge_config, after=[extractor]).run_once()
        judge_s = time.perf_counter() - started
        after_judging = text_bytes(redis_url, [r.prompt_text or "" for r in records])
        retrain = RetrainConfig(min_examples=20, min_per_class=4)
        [result] = await RetrainWorker(client, log, config.edge_bundle, retrain).run_once()
        query_ids, features = await FeatureStore(client, log, 1).read(edge.version, COHORT)
        order = {query_id: row for row, query_id in enumerate(query_ids)}
        stored = np.stack([features[order[f"q-{i}"]] for i in indices]) if len(order) == len(indices) else None
    finally:
        await client.aclose()
    return {"result": result, "judged": dict(judged), "judge_and_features_s": judge_s,
            "text_bytes_after_judging": after_judging, "stored_features": stored,
            **await _ttl_audit(log, records[:DECOYS], config.text_ttl_s)}


async def _ttl_audit(log: OutcomeLogConfig, records: list[OutcomeRecord], ttl_s: int) -> dict[str, int]:
    """Holds a few queries' texts again (new ids) and never judges them: bytes held, then after the TTL."""
    decoys = [dataclasses.replace(r, query_id=f"decoy-{r.query_id}") for r in records]
    async with RedisOutcomeLog(log) as outcome_log:
        for record in decoys:
            outcome_log.record(record)
    texts = [r.prompt_text or "" for r in decoys]
    held = text_bytes(log.url, texts)
    await asyncio.sleep(ttl_s + 1.5)
    return {"text_bytes_held_before_ttl": held, "text_bytes_after_ttl": text_bytes(log.url, texts)}


def cascade(stream: Stream, test: list[int], logits: npt.NDArray[np.float64]) -> dict[str, float]:
    """APGR and CPT(50%) of a router escalating the lowest keep-scores first, on the held-out questions."""
    curve = routing_curve(stream.edge[test], stream.cloud[test], -logits, n_bins=10)
    return {"apgr": round(curve.apgr(), 4), "cpt50": round(curve.cpt(0.5), 4)}


def run(config: Config) -> dict[str, Any]:
    engine = Engine(config.edge_bundle)
    try:
        started = time.perf_counter()
        stream = load_stream(config, engine)
        collect_s = time.perf_counter() - started
        train, test = split(stream.items, config.test_frac, config.seed)
        probe = engine.manifest.probe
        layout = FeatureLayout(probe.first_layer, probe.last_layer,
                               probe.feature_dim // (probe.last_layer - probe.first_layer + 1))
        offline = offline_fit(stream, train, layout)
        with RedisProcess() as redis_server:
            online = asyncio.run(learn_online(config, engine, stream, train, redis_server.url))
    finally:
        engine.close()
    return report(config, stream, train, test, offline, online, collect_s)


def offline_fit(stream: Stream, train: list[int], layout: FeatureLayout) -> ProbeFit | None:
    """The probe fitted directly on the stream (None: too few of a label to fit one), the examples in the
    retrain worker's order (by query id), so that both make the same split."""
    by_id = sorted(train, key=lambda i: f"q-{i}")
    try:
        return select_probe(stream.tbg[by_id], stream.route[by_id], layout, val_frac=0.3, seed=0)
    except InvalidInput as exc:
        print(f"no offline fit: {exc}", file=sys.stderr)
        return None


def report(config: Config, stream: Stream, train: list[int], test: list[int], offline: ProbeFit | None,
           online: dict[str, Any], collect_s: float) -> dict[str, Any]:
    result = online["result"]
    x = stream.tbg[test].astype(np.float64)
    learned = result.refit.fit  # the pipeline's fit, whether or not it beat the bundle's installed probe
    installed_weight, installed_bias = installed_probe(config.edge_bundle)
    arms = {"start": np.zeros(len(test)), "installed": x @ installed_weight + installed_bias}
    for name, fit in (("offline_gold", offline), ("learned_gold", learned)):
        if fit is not None:
            arms[name] = x @ fit.weight + fit.bias
    scores = {name: cascade(stream, test, logits) for name, logits in arms.items()}
    stored = online["stored_features"]
    out: dict[str, Any] = {
        **this_cpu().to_json(), "command": config.command, "n_stream": len(train), "n_held_out": len(test),
        "edge_accuracy_held_out": round(float(stream.edge[test].mean()), 4),
        "cloud_accuracy_held_out": round(float(stream.cloud[test].mean()), 4),
        "apgr_start": scores["start"]["apgr"], "apgr_offline_gold": scores.get("offline_gold", {}).get("apgr"),
        "cpt50_offline_gold": scores.get("offline_gold", {}).get("cpt50"),
        "apgr_learned_gold": scores.get("learned_gold", {}).get("apgr"),
        "cpt50_learned_gold": scores.get("learned_gold", {}).get("cpt50"),
        "apgr_installed": scores["installed"]["apgr"],
        "labels_used": result.refit.examples, "retrain_published": result.published is not None,
        "retrain_reason": result.reason,
        "retrain_held_out_auroc": result.refit.new_auroc, "live_held_out_auroc": result.refit.live_auroc,
        "feature_max_abs_diff_fp16": None if stored is None
        else round(float(np.max(np.abs(stored - stream.tbg[train]))), 5),
        "judged": online["judged"], "text_bytes_after_judging": online["text_bytes_after_judging"],
        "text_bytes_held_before_ttl": online["text_bytes_held_before_ttl"],
        "text_bytes_after_ttl": online["text_bytes_after_ttl"], "text_ttl_s": config.text_ttl_s,
        "seconds": {"edge_answers_and_features": round(collect_s, 1),
                    "judge_and_feature_extraction": round(online["judge_and_features_s"], 1)},
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "not_measured": {
            "apgr_learned": "judge labels from the local judge model (tritonserver) are not run by this benchmark",
            "cpt50_learned": "as apgr_learned",
            "local_ttft_p50_ms": "serving latency: bench.edge_serving",
            "probe_policy_delivery_s": "probes are not delivered to devices yet",
        },
    }
    if out["apgr_learned_gold"] is not None and out["apgr_offline_gold"]:
        out["learned_gold_over_offline_gold"] = round(out["apgr_learned_gold"] / out["apgr_offline_gold"], 4)
    return out


def installed_probe(bundle: Path) -> tuple[npt.NDArray[np.float64], float]:
    """The bundle's TBG probe as installed (the shipped router probe, trained on the recipe's questions: most
    held-out questions here were in its training set, so its numbers are optimistic)."""
    manifest = load_bundle(bundle, verify=False)
    weights, biases = read_probe(bundle, manifest)
    column = manifest.probe.outputs.index("tbg")
    return weights[:, column].astype(np.float64), float(biases[column])


def _progress(name: str) -> Any:
    last = [0.0]

    def tell(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 30:
            last[0] = now
            print(f"  {name}: {done}/{total}", file=sys.stderr, flush=True)

    return tell


def _now() -> Any:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    result = run(config)
    text = json.dumps(result, indent=1, sort_keys=True)
    print(text)
    if config.json_path is not None:
        config.json_path.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
