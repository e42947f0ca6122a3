"""One simulated device for the fault suite, as a child process: a real edge agent (a tiny bundle, its
SQLite outbox, the escalation client, the background uploader) asking questions at a steady pace.

Usage: python -m tests.faults.device BUNDLE STATE_DIR TARGET DEVICE_ID COHORT

The environment variable ``CONFROUTE_FAULTS_DEVICE`` may hold JSON options (:class:`Options`): the outbox's
bound, and a separate "device disk" for the agent's own files (the outbox and the saved policy), which the
disk-full fault fills while the suite's bookkeeping below stays writable.

It writes, in STATE_DIR:

- ``model.json`` at start: the edge model's id and version (what a policy for this device names);
- ``answers.jsonl``: one line per answered query (wall time, query id, side, latency in seconds, the
  policy version it was routed with: the device watches the cloud's policies);
- ``acked.txt``: ``<wall time> <query id>`` for each record the cloud acknowledged (the outbox then
  deletes it), fsynced before the uploader acts on the acknowledgement;
- ``summary.json`` when it exits: questions asked, records left in the outbox, the model version, the
  outbox's lifetime totals (evicted, uploaded, duplicates, dead letters) and the agent's count of outcomes
  it could not store.

Its own times (``t`` in the answers, the acknowledgement times) are on the suite's clock: when the device's
clock is skewed (``skewclock.c``), ``clock_skew_s`` is subtracted from them; the agent itself sees only the
skewed clock.

It asks until the file ``STATE_DIR/stop`` appears, then drains its outbox (bounded) and exits 0.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from confroute.backoff import Backoff
from confroute.contract import ModelRef, OutcomeAck, OutcomeBatch, Policy, RoutingMode, Thresholds
from confroute.engine import SamplingParams
from confroute.routing import default_policy
from edge_agent.cloud import (
    BreakerSettings,
    CloudConfig,
    EscalationClient,
    PolicyKeeper,
    PolicyWatcher,
    open_channel,
)
from edge_agent.core import AgentIdentity, EdgeAgent
from edge_agent.model import EdgeModel
from edge_agent.outbox import GrpcOutcomeSink, OutcomeQueue, QueueConfig, Uploader
from edge_agent.outbox.uploader import UploaderConfig

CLOUD_DEADLINE_S = 1.5  # one escalation's budget, retries included
BREAKER_COOLDOWN_S = 2.0
PACE_S = 0.05  # between questions
DRAIN_S = 45.0  # the longest the outbox may take to empty after the stop file appears
PARAMS = SamplingParams(max_new_tokens=4)
FIRST_ISSUED = datetime(2026, 1, 1, tzinfo=timezone.utc)  # faults-1, the device's first policy: before any cloud's


@dataclass(frozen=True)
class Options:
    """What a fault changes about a device (``CONFROUTE_FAULTS_DEVICE``, JSON)."""

    max_records: int = QueueConfig.max_records  # the outbox's bound
    data_dir: str = ""  # the agent's own files (outbox, saved policy); empty: STATE_DIR
    clock_skew_s: float = 0.0  # how far the device's clock is ahead (skewclock.c); its bookkeeping undoes it

    @classmethod
    def from_env(cls) -> Options:
        return cls(**json.loads(os.environ.get(ENV_OPTIONS, "{}")))

    def to_env(self) -> dict[str, str]:
        return {ENV_OPTIONS: json.dumps(dataclasses.asdict(self))}


ENV_OPTIONS = "CONFROUTE_FAULTS_DEVICE"


class RecordingSink:
    """The real gRPC sink, writing down what the cloud acknowledged before the uploader deletes it."""

    def __init__(self, inner: GrpcOutcomeSink, acked: IO[str], skew_s: float) -> None:
        self._inner = inner
        self._acked = acked
        self._skew_s = skew_s

    def upload(self, batch: OutcomeBatch) -> OutcomeAck:
        ack = self._inner.upload(batch)
        rejected = {r.query_id for r in ack.rejected}
        now = time.time() - self._skew_s
        self._acked.write("".join(f"{now:.3f} {r.query_id}\n" for r in batch.records if r.query_id not in rejected))
        self._acked.flush()
        os.fsync(self._acked.fileno())
        return ack


def always_escalate(edge_model: ModelRef, cohort: str, version: str, issued_at: datetime | None = None) -> Policy:
    """A policy that escalates every query (post-generation threshold 1.0), issued at ``issued_at`` (now)."""
    base = default_policy(edge_model, cohort)
    return dataclasses.replace(base, policy_version=version, mode=RoutingMode.POST, shadow_rate=0.0,
                               thresholds=Thresholds(pre=0.5, post=1.0, hybrid_low=0.2, hybrid_high=0.8),
                               issued_at=issued_at or datetime.now(timezone.utc))


def main(bundle: str, state: str, target: str, device_id: str, cohort: str) -> int:
    folder = Path(state)
    options = Options.from_env()
    data = Path(options.data_dir) if options.data_dir else folder
    data.mkdir(parents=True, exist_ok=True)
    model = EdgeModel(Path(bundle))
    edge_model = ModelRef(model.model_id, model.version)
    (folder / "model.json").write_text(json.dumps({"id": edge_model.id, "version": edge_model.version}))
    keeper = PolicyKeeper(edge_model, cohort, data / "policy.json")
    if not keeper.received_version:  # a restarted device routes with the policy it saved
        assert keeper.offer(always_escalate(edge_model, cohort, "faults-1", FIRST_ISSUED)).applied
    # The breaker cools down for 2 s rather than the product's 30 s, so that a short run sees escalations resume.
    cloud = CloudConfig(target=target, deadline_s=CLOUD_DEADLINE_S, reconnect=Backoff(base_s=0.05, cap_s=0.5),
                        breaker=BreakerSettings(failure_threshold=5, cooldown_s=BREAKER_COOLDOWN_S),
                        max_reconnect_backoff_s=0.5)
    # Rounds every 0.2 s rather than the product's 5 s, so that a short run sees many uploads; backoff as short.
    uploads = UploaderConfig(max_attempts=2, backoff=Backoff(base_s=0.05, cap_s=0.5), interval_s=0.2)
    asked = _already_asked(folder)  # a restarted device goes on counting
    channel = open_channel(cloud)  # shared by escalations and uploads, as edge_agent.app wires them
    outbox = QueueConfig(data / "outbox.db", max_records=options.max_records)
    with OutcomeQueue(outbox) as queue, EscalationClient(cloud, channel=channel) as client, \
            (folder / "acked.txt").open("a") as acked, (folder / "answers.jsonl").open("a") as answers:
        uploader = Uploader(queue, RecordingSink(GrpcOutcomeSink(channel, deadline_s=5.0), acked, options.clock_skew_s),
                            uploads)
        uploader.start()
        watcher = PolicyWatcher(keeper, cloud, device_id, channel=channel)
        watcher.start()
        agent = EdgeAgent(model, keeper, queue, AgentIdentity(device_id, cohort), escalator=client,
                          on_recorded=uploader.wake)
        while not (folder / "stop").exists():
            started = time.monotonic()
            answer = agent.answer([{"role": "user", "content": f"{device_id} question {asked}"}], PARAMS)
            latency = time.monotonic() - started
            answers.write(json.dumps({"t": time.time() - options.clock_skew_s, "qid": answer.query_id,
                                      "side": answer.side, "latency_s": latency,
                                      "policy": answer.policy_version}) + "\n")
            answers.flush()
            asked += 1
            time.sleep(PACE_S)
        agent.close()
        watcher.stop()
        deadline = time.monotonic() + DRAIN_S
        while queue.stats().queued and time.monotonic() < deadline:
            uploader.wake()
            time.sleep(0.1)
        uploader.stop()
        totals = queue.stats()
    channel.close()
    summary = {"asked": asked, "left_in_outbox": totals.queued, "edge_model_version": model.version,
               "evicted": totals.evicted_total, "uploaded": totals.uploaded_total,
               "duplicates": totals.duplicates_total, "dead_lettered": totals.dead_lettered_total,
               "unrecorded": agent.outcomes_unrecorded}
    (folder / "summary.json").write_text(json.dumps(summary))
    return 0


def _already_asked(folder: Path) -> int:
    try:
        return len((folder / "answers.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
