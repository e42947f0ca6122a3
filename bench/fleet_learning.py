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

6. **Learned online, local judge** (when ``CONFROUTE_TRITON_PYTHON`` names Triton's model environment and
   ``--judge local``): the same stream through the same pipeline, but the cloud bundle (Qwen2.5-Coder-0.5B
   8-bit, the demo's cloud) behind a real tritonserver answers each question (the answer the service holds for
   a shadowed query) and ``JudgeWorker`` judges the edge answer against it with the service's judge
   (MT-Bench single grading, ``cloud_service.judge``): ``apgr_learned``, ``cpt50_learned`` and the judge's
   agreement with the gold labels (``judge_gold_agreement``).
7. **Rounds**: the stream arrives in ``--rounds`` parts; after each, the retrain worker refits on everything
   labelled so far and every arm is scored on the held-out half (APGR, CPT(50%), accuracy at the built-in
   policy's threshold) against the untrained start, a probe fitted offline on the gold labels of the same
   queries, and random routers (``rounds``).
8. **Local TTFT** of the default mode (``pre`` 0.5, the shipped probe): an in-process ``EdgeAgent`` answers
   held-out questions with no cloud; the first text of each answer the policy keeps (``local_ttft_p50_ms``).

One agent process (the ``EdgeAgent`` of step 8) and the service's workers in this process: several agent
processes would only repeat the same answers (greedy), so the stream is answered once. Not measured here
(under ``not_measured``, never filled with guesses): probe+policy delivery to agents
(``bench.learnbench.delivery``: nothing delivers probes to devices yet).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.cloudbench.processes import RedisProcess
from bench.cpu import this_cpu
from bench.learnbench.delivery import probe_policy_delivery_s
from bench.learnbench.local_cloud import cloud_answers, local_cloud, open_backend, triton_python
from bench.learnbench.scores import cascade, random_apgr
from bench.learnbench.ttft import LocalTtft, local_ttft
from cloud_service.judge import Judge, JudgeConfig, JudgeWorker
from cloud_service.judge.config import Method
from cloud_service.judge.verdict import Verdict
from cloud_service.ops.text_audit import text_bytes
from cloud_service.outcomes import RedisOutcomeLog
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.ports import InferenceBackend
from cloud_service.redis_client import connect
from cloud_service.retrain.config import RetrainConfig
from cloud_service.retrain.features import FeatureExtractor, FeatureStore
from cloud_service.retrain.worker import RetrainWorker
from confroute.bundle.probe import read_probe
from confroute.bundle.store import load_bundle
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
CLOUD_BUNDLE = "qwen2.5-coder-0.5b-instruct-int8"  # the demo's cloud model


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: Path
    edge_bundle: Path
    cloud_bundle: Path
    triton_python: Path | None  # None: no local judge arm
    n: int | None
    test_frac: float
    max_new_tokens: int
    rounds: int
    judge_method: Method
    judge_max_tokens: int
    ttft_n: int
    text_ttl_s: int
    seed: int
    json_path: Path | None
    command: str


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_learning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="120 questions, 2 rounds, no local judge")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--data", type=Path, help="the shared data folder (default ../shared/data)")
    parser.add_argument("--edge-bundle", type=Path, help="default: SmolLM2-135M 8-bit (build it with make demo)")
    parser.add_argument("--cloud-bundle", type=Path, help=f"the local judge's model (default: {CLOUD_BUNDLE})")
    parser.add_argument("--judge", choices=("local", "none"),
                        help="the local judge arm (default: local unless --quick; needs CONFROUTE_TRITON_PYTHON)")
    parser.add_argument("--judge-method", choices=("single", "pairwise"), default="pairwise",
                        help="the judge's prompt (default pairwise: the local 0.5B model does not follow single "
                             "grading's format)")
    parser.add_argument("--judge-max-tokens", type=int, default=96)
    parser.add_argument("--n", type=int, help="questions drawn from the recipe (default all 360; quick 120)")
    parser.add_argument("--rounds", type=int, help="parts the stream arrives in (default 3; quick 2)")
    parser.add_argument("--ttft-n", type=int, help="held-out questions answered for the TTFT (default 30; quick 10)")
    parser.add_argument("--text-ttl-s", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = args.data or Path(os.environ.get("CONFROUTE_DATA_DIR", REPO.parent / "shared" / "data"))
    cache = cache_dir(os.environ)
    judge = args.judge or ("none" if args.quick else "local")
    command = " ".join(["python -m bench.fleet_learning", *(argv if argv is not None else sys.argv[1:])])
    return Config(data, args.edge_bundle or default_bundle_dir(cache, quantized=True),
                  args.cloud_bundle or cache / "bundles" / CLOUD_BUNDLE,
                  triton_python(os.environ) if judge == "local" else None,
                  args.n or (120 if args.quick else None), 0.5, 32, args.rounds or (2 if args.quick else 3),
                  args.judge_method, args.judge_max_tokens, args.ttft_n or (10 if args.quick else 30),
                  args.text_ttl_s, args.seed, args.json, command)


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


def held_record(edge: ModelRef, query_id: str, item: Item, answer: str, cloud_answer: str) -> OutcomeRecord:
    """The service's record of a shadowed query, texts in hand (the edge answer as the draft)."""
    now = _now()
    return OutcomeRecord(
        query_id=query_id, device_id="bench-device", cohort=COHORT, edge_model=edge, mode=RoutingMode.PRE,
        decision=Decision.LOCAL, answered_by=AnsweredBy.EDGE, latency=Latency(edge_ms=0.0, total_ms=0.0),
        started_at=now, finished_at=now, signals={}, policy_version="bench", shadow=True, propensity=1.0,
        cloud_model=ModelRef("recorded-cloud", "1"), prompt_text=prompt_text(item),
        edge_draft_text=answer or "(empty)", answer_text=cloud_answer or "(empty)", label=Label.UNKNOWN,
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


class RecordingJudge(Judge):
    """The service's judge, keeping each verdict's label (to compare the judge's labels with gold)."""

    def __init__(self, backend: InferenceBackend, config: JudgeConfig) -> None:
        super().__init__(backend, config)
        self.labels: dict[str, Label | None] = {}
        self.reasons: dict[str, str] = {}

    async def verdict(self, query_id: str, question: str, edge_answer: str, cloud_answer: str) -> Verdict:
        verdict = await super().verdict(query_id, question, edge_answer, cloud_answer)
        self.labels[query_id] = verdict.label
        self.reasons[query_id] = verdict.reason
        return verdict


@dataclasses.dataclass(frozen=True)
class Arm:
    """One way of labelling the stream: the judge's backend and the cloud answers the records hold."""

    name: str
    backend: InferenceBackend
    cloud_answers: list[str]  # by stream position (the train indices)
    max_tokens: int
    method: Method = "single"


async def learn_online(config: Config, engine: Engine, stream: Stream, indices: list[int], redis_url: str,
                       arm: Arm) -> dict[str, Any]:
    """The pipeline over the stream's questions, in rounds: each round's refit, the labels, the text audit."""
    edge = ModelRef(engine.manifest.model_id, engine.manifest.build_version)
    log = OutcomeLogConfig(url=redis_url, retain_text=True, text_ttl_s=config.text_ttl_s)
    answers = dict(zip(indices, arm.cloud_answers, strict=True))
    records = [held_record(edge, f"q-{i}", stream.items[i], stream.answers[i], answers[i]) for i in indices]
    client = connect(redis_url, connect_timeout_s=1.0, command_timeout_s=600.0)
    judge_config = JudgeConfig(method=arm.method, max_in_flight=4, calls_per_second=1e6, max_tokens=arm.max_tokens,
                               timeout_s=600.0)
    judge = RecordingJudge(arm.backend, judge_config)
    rounds: list[dict[str, Any]] = []
    judged: dict[str, int] = {}
    judge_s = 0.0
    try:
        extractor = FeatureExtractor(engine, FeatureStore(client, log, max_features=100_000))
        judge_worker = JudgeWorker(client, log, judge, judge_config, after=[extractor])
        retrain_worker = RetrainWorker(client, log, config.edge_bundle, RetrainConfig(min_examples=20, min_per_class=4))
        for part in np.array_split(np.arange(len(records)), config.rounds):
            async with RedisOutcomeLog(log) as outcome_log:
                for row in part:
                    outcome_log.record(records[row])
            started = time.perf_counter()
            for key, count in (await judge_worker.run_once()).items():
                judged[key] = judged.get(key, 0) + count
            judge_s += time.perf_counter() - started
            results = await retrain_worker.run_once()
            rounds.append({"seen": [indices[row] for row in range(int(part[-1]) + 1)],
                           "refit": results[0].refit if results else None,
                           "published": bool(results and results[0].published is not None)})
        after_judging = text_bytes(redis_url, [r.prompt_text or "" for r in records])
        query_ids, features = await FeatureStore(client, log, 1).read(edge.version, COHORT)
        order = {query_id: row for row, query_id in enumerate(query_ids)}
        stored = np.stack([features[order[f"q-{i}"]] for i in indices]) if len(order) == len(indices) else None
    finally:
        await client.aclose()
    return {"rounds": rounds, "labels": judge.labels, "reasons": judge.reasons, "judged": judged,
            "judge_and_features_s": judge_s,
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
        gold = Arm("gold", GoldJudge({f"q-{i}": bool(stream.route[i]) for i in train}), ["(the cloud's answer)"] *
                   len(train), 16)
        online: dict[str, Any] = {}
        with RedisProcess() as redis_server:
            online = {"gold": asyncio.run(learn_online(config, engine, stream, train, redis_server.url, gold))}
        if config.triton_python is not None:
            online["judge"], online["cloud_answers_s"] = judge_arm(config, engine, stream, train)
    finally:
        engine.close()
    started = time.perf_counter()
    ttft = local_ttft(config.edge_bundle, [stream.items[i].example.messages for i in test[:config.ttft_n]],
                      config.max_new_tokens)
    ttft_s = time.perf_counter() - started
    return report(config, stream, train, test, layout, online, {"edge_answers_and_features": collect_s,
                                                                  "local_ttft": ttft_s}, ttft)


def judge_arm(config: Config, engine: Engine, stream: Stream, train: list[int]) -> tuple[dict[str, Any], float]:
    """The stream labelled by the local judge: the cloud bundle behind tritonserver answers, then judges."""
    assert config.triton_python is not None
    print("  starting tritonserver with the cloud bundle", file=sys.stderr, flush=True)
    with local_cloud(config.cloud_bundle, config.triton_python) as url, RedisProcess() as redis_server:

        async def labelled() -> tuple[dict[str, Any], float]:
            backend = await open_backend(url)
            try:
                started = time.perf_counter()
                answers = await cloud_answers(backend, [stream.items[i].example.messages for i in train],
                                              config.max_new_tokens)
                answered_s = time.perf_counter() - started
                arm = Arm("judge", backend, answers, config.judge_max_tokens, config.judge_method)
                return await learn_online(config, engine, stream, train, redis_server.url, arm), answered_s
            finally:
                await backend.close()

        return asyncio.run(labelled())


def offline_fit(stream: Stream, seen: list[int], layout: FeatureLayout) -> ProbeFit | None:
    """The probe fitted directly on the stream so far (None: too few of a label to fit one), the examples in
    the retrain worker's order (by query id), so that both make the same split."""
    by_id = sorted(seen, key=lambda i: f"q-{i}")
    try:
        return select_probe(stream.tbg[by_id], stream.route[by_id], layout, val_frac=0.3, seed=0)
    except InvalidInput as exc:
        print(f"no offline fit on {len(seen)} queries: {exc}", file=sys.stderr)
        return None


def round_scores(stream: Stream, test: list[int], layout: FeatureLayout,
                 online: dict[str, Any]) -> list[dict[str, Any]]:
    """After each round, every arm on the held-out half (None where no fit was possible yet)."""
    x = stream.tbg[test].astype(np.float64)
    edge, cloud = stream.edge[test], stream.cloud[test]
    start = cascade(edge, cloud, np.zeros(len(test)))
    out = []
    for number, gold_round in enumerate(online["gold"]["rounds"]):
        seen: list[int] = gold_round["seen"]
        fits: dict[str, ProbeFit | None] = {"offline_gold": offline_fit(stream, seen, layout)}
        for arm in ("gold", "judge"):
            if arm in online:
                refit = online[arm]["rounds"][number]["refit"]
                fits[f"learned_{arm}"] = None if refit is None else refit.fit
        row: dict[str, Any] = {"round": number + 1, "labels_seen": len(seen), "start": start,
                               "random_apgr": random_apgr(edge, cloud, number)}
        for name, fit in fits.items():
            row[name] = None if fit is None else cascade(edge, cloud, x @ fit.weight + fit.bias)
        row["published"] = {arm: online[arm]["rounds"][number]["published"] for arm in ("gold", "judge")
                            if arm in online}
        out.append(row)
    return out


def judge_agreement(stream: Stream, train: list[int], labels: dict[str, Label | None]) -> dict[str, Any]:
    """The local judge's labels against gold: "correct" should mean keep (the route label 1: the edge is right
    or the cloud wrong)."""
    given = [(i, labels[f"q-{i}"]) for i in train if labels.get(f"q-{i}") is not None]
    if not given:
        return {"judge_labelled": 0, "judge_gold_agreement": None}
    says_keep = np.array([label is Label.CORRECT for _, label in given])
    rows = [i for i, _ in given]
    keep = stream.route[rows].astype(bool)  # 1: keeping loses nothing
    return {"judge_labelled": len(given), "judge_unlabelled": len(train) - len(given),
            "judge_gold_agreement": round(float((says_keep == keep).mean()), 4),
            "judge_edge_correct_agreement": round(float((says_keep == stream.edge[rows].astype(bool)).mean()), 4),
            "judge_says_correct_share": round(float(says_keep.mean()), 4),
            "gold_keep_share_of_labelled": round(float(keep.mean()), 4)}


def report(config: Config, stream: Stream, train: list[int], test: list[int], layout: FeatureLayout,
           online: dict[str, Any], seconds: dict[str, float], ttft: LocalTtft) -> dict[str, Any]:
    gold = online["gold"]
    rounds = round_scores(stream, test, layout, online)
    final = rounds[-1]
    x = stream.tbg[test].astype(np.float64)
    installed_weight, installed_bias = installed_probe(config.edge_bundle)
    installed = cascade(stream.edge[test], stream.cloud[test], x @ installed_weight + installed_bias)
    last_refit = gold["rounds"][-1]["refit"]
    stored = gold["stored_features"]
    out: dict[str, Any] = {
        **this_cpu().to_json(), "command": config.command, "n_stream": len(train), "n_held_out": len(test),
        "edge_accuracy_held_out": round(float(stream.edge[test].mean()), 4),
        "cloud_accuracy_held_out": round(float(stream.cloud[test].mean()), 4),
        "apgr_start": final["start"]["apgr"], "apgr_random": final["random_apgr"],
        **_arm_keys(final, "offline_gold", "offline_gold"), **_arm_keys(final, "learned_gold", "learned_gold"),
        "apgr_installed": installed["apgr"], "rounds": rounds,
        "labels_used": None if last_refit is None else last_refit.examples,
        "retrain_published": gold["rounds"][-1]["published"],
        "retrain_reason": None if last_refit is None else last_refit.reason,
        "retrain_held_out_auroc": None if last_refit is None else last_refit.new_auroc,
        "live_held_out_auroc": None if last_refit is None else last_refit.live_auroc,
        "feature_max_abs_diff_fp16": None if stored is None
        else round(float(np.max(np.abs(stored - stream.tbg[train]))), 5),
        "judged": gold["judged"], "text_bytes_after_judging": gold["text_bytes_after_judging"],
        "text_bytes_held_before_ttl": gold["text_bytes_held_before_ttl"],
        "text_bytes_after_ttl": gold["text_bytes_after_ttl"], "text_ttl_s": config.text_ttl_s,
        "default_mode": ttft.mode, "default_pre_threshold": ttft.threshold,
        "local_ttft_p50_ms": ttft.p50_ms(), "local_ttft_n": len(ttft.ttft_ms), "ttft_escalated_n": ttft.escalated,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "not_measured": {"probe_policy_delivery_s": probe_policy_delivery_s()},
    }
    if "judge" in online:
        judge = online["judge"]
        out.update(_arm_keys(final, "learned_judge", "learned"))
        out.update(judge_agreement(stream, train, judge["labels"]))
        out["judge_judged"] = judge["judged"]
        out["judge_method"], out["judge_max_tokens"] = config.judge_method, config.judge_max_tokens
        out["judge_verdicts"] = dict(Counter(judge["reasons"].values()).most_common(8))
        out["judge_text_bytes_after_judging"] = judge["text_bytes_after_judging"]
        out["judge_text_bytes_after_ttl"] = judge["text_bytes_after_ttl"]
        seconds["cloud_answers"] = online["cloud_answers_s"]
        seconds["local_judge_and_features"] = judge["judge_and_features_s"]
        if out["apgr_learned"] is not None and out["apgr_offline_gold"]:
            out["learned_over_offline_gold"] = round(out["apgr_learned"] / out["apgr_offline_gold"], 4)
    else:
        reason = ("the local judge arm was not run (--judge none, the --quick default, or CONFROUTE_TRITON_PYTHON "
                  "unset): it needs the cloud bundle behind tritonserver")
        out["not_measured"].update({"apgr_learned": reason, "cpt50_learned": reason, "judge_gold_agreement": reason})
    if out["apgr_learned_gold"] is not None and out["apgr_offline_gold"]:
        out["learned_gold_over_offline_gold"] = round(out["apgr_learned_gold"] / out["apgr_offline_gold"], 4)
    seconds["judge_and_feature_extraction"] = gold["judge_and_features_s"]
    out["seconds"] = {name: round(value, 1) for name, value in seconds.items()}
    return out


def _arm_keys(row: dict[str, Any], arm: str, suffix: str) -> dict[str, Any]:
    scores = row.get(arm) or {}
    return {f"apgr_{suffix}": scores.get("apgr"), f"cpt50_{suffix}": scores.get("cpt50"),
            f"accuracy_{suffix}": scores.get("accuracy"), f"escalation_rate_{suffix}": scores.get("escalation_rate")}


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
