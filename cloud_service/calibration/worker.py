"""The recalibration worker: fold new outcomes, then publish a new policy per (edge model version, cohort).

``run_once()`` folds every outcome stream through the consumer group (``cloud_service.calibration.fold``)
and then, per partition: judges a running canary from the labelled outcomes each arm routed (promote,
roll back, or wait: no new candidate while one is undecided), and recalibrates from the statistics
(``policy_maker``): a few dozen small strings, whatever the log's length. A new policy goes to the policy
store as a canary candidate; a refusal (too few labels, too small an effective sample size, labels of one
class) leaves the current policy in place and is logged with its reason. Either way one provenance entry
is appended to the partition's ``recalibrations`` stream: the data window (first and last entry of the
outcome stream), the sample sizes, the canary verdict and, for a published policy, the escalation rate
and risk estimated before and after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Protocol

from redis.typing import EncodableT, FieldT

from cloud_service.calibration.config import RecalibrationConfig
from cloud_service.calibration.fold import FoldCounts, StreamFolder
from cloud_service.calibration.policy_maker import Recalibration, recalibrate
from cloud_service.calibration.statistics_reader import read_arm, read_statistics
from cloud_service.outcomes import codec
from cloud_service.outcomes.config import OutcomeLogConfig, PartitionKeys
from cloud_service.policies.operations import Published, RolloutStore, judge_canary, publish_candidate
from cloud_service.redis_client import RedisClient, stream_entries, translated
from confroute.calibration.canary import CanaryDecision, CanaryVerdict
from confroute.contract.policy import Policy
from confroute.errors import Unavailable

logger = logging.getLogger(__name__)

PROVENANCE_HISTORY = 1000


class PolicyTarget(RolloutStore, Protocol):
    """Where recalibrated policies go: the policy store (``RedisPolicyStore``)."""

    async def current(self, edge_model_version: str, cohort: str, device_id: str = "") -> Policy | None: ...


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RecalibrationWorker:
    """Folds and recalibrates every partition of one outcome log into one policy store."""

    def __init__(
        self,
        client: RedisClient,
        log_config: OutcomeLogConfig,
        store: PolicyTarget,
        config: RecalibrationConfig,
        clock: Callable[[], datetime] = _now,
        on_result: Callable[[PartitionKeys, Recalibration], None] | None = None,
    ) -> None:
        self._client = client
        self._on_result = on_result  # each partition's result, as recorded (the worker's metrics)
        self._log = log_config
        self._store = store
        self._config = config
        self._clock = clock
        self._folder = StreamFolder(client, log_config, config)

    async def run_once(self) -> list[Recalibration]:
        """Folds what is new, then recalibrates every partition."""
        await self.fold()
        return await self.recalibrate()

    async def run_forever(self, interval_s: float) -> None:
        """``run_once()`` every ``interval_s``; a Redis outage is logged and waited out."""
        while True:
            try:
                await self.run_once()
            except Unavailable as exc:
                logger.warning("recalibration skipped, Redis unavailable: %s", exc)
            await asyncio.sleep(interval_s)

    async def fold(self) -> FoldCounts:
        """Folds every outcome stream's new and abandoned entries."""
        counts = FoldCounts()
        for stream in sorted({keys.stream for keys in await self.partitions()}):
            counts.add(await self._folder.fold_all(stream))
        logger.info("folded %d outcome entries (%d read, %d acknowledged here)", counts.folded, counts.read,
                    counts.acknowledged)
        return counts

    async def recalibrate(self) -> list[Recalibration]:
        """One recalibration per partition, from the statistics alone. A partition that fails (bad data) is
        logged and skipped, so that it cannot stop the pass for the others; a Redis outage stops the pass."""
        results = []
        for keys in await self.partitions():
            try:
                results.append(await self.recalibrate_partition(keys))
            except Unavailable:
                raise
            except Exception:  # one bad partition must not hold back every other one
                logger.exception("recalibrating partition %s failed; the other partitions go on", keys.tag)
        return results

    async def partitions(self) -> list[PartitionKeys]:
        with translated("listing outcome partitions"):
            tags = await self._client.smembers(self._log.partitions_key)
        return [self._log.partition_of_tag(_text(tag)) for tag in sorted(tags)]

    async def evaluate_canary(self, keys: PartitionKeys) -> CanaryDecision | None:
        """Promotes or rolls back the partition's running canary from the labelled outcomes each arm routed
        (``judge_canary``), or says to wait; None when no canary runs."""
        version, cohort = keys.partition.edge_model_version, keys.partition.cohort
        state = (await self._store.rollout(version, cohort)).state
        if not state.canary:
            return None
        canary = await read_arm(self._client, keys, state.canary)
        control = await read_arm(self._client, keys, state.control)
        decision = await judge_canary(self._store, version, cohort, canary, control)
        logger.info("canary %s vs control %s for edge model %s, cohort %r: %s (%s)", state.canary, state.control,
                    version, cohort, decision.verdict.value, decision.reason)
        return decision

    async def recalibrate_partition(self, keys: PartitionKeys) -> Recalibration:
        """Judges a running canary first; while it is undecided no new candidate is published."""
        decision = await self.evaluate_canary(keys)
        if decision is not None and decision.verdict is CanaryVerdict.WAIT:
            result = Recalibration(None, f"a canary is still being evaluated: {decision.reason}",
                                   {"canary": {"verdict": decision.verdict.value, "reason": decision.reason}})
            await self._record(keys, result)
            return result
        version, cohort = keys.partition.edge_model_version, keys.partition.cohort
        stats = await read_statistics(self._client, keys)
        current = await self._store.current(version, cohort)
        result = with_probe_of(current, recalibrate(stats, current, self._config, edge_model_version=version,
                                                    cohort=cohort, now=self._clock()))
        result.provenance["window"] = await self._window(keys)
        if decision is not None:
            result.provenance["canary"] = {"verdict": decision.verdict.value, "reason": decision.reason}
        if result.policy is None:
            logger.warning("no new policy for edge model %s, cohort %r: %s; the current one (%s) stays",
                           version, cohort, result.reason, current.policy_version if current else "none")
        else:
            published = await publish(self._store, result.policy, self._config.canary_share)
            result.provenance["rollout"] = {"role": published.role, "reason": published.reason}
            logger.info("published policy %s (%s) for edge model %s, cohort %r: %s", published.version,
                        published.role, version, cohort, result.provenance)
        await self._record(keys, result)
        return result

    async def _window(self, keys: PartitionKeys) -> dict[str, str]:
        """The ids (milliseconds-sequence) of the oldest and newest entry the statistics may include."""
        with translated("reading the outcome stream's window"):
            first = stream_entries(await self._client.xrange(keys.stream, count=1))
            last = stream_entries(await self._client.xrevrange(keys.stream, count=1))
        return {"first": _text(first[0][0]) if first else "", "last": _text(last[0][0]) if last else ""}

    async def _record(self, keys: PartitionKeys, result: Recalibration) -> None:
        if self._on_result is not None:
            self._on_result(keys, result)
        fields: dict[FieldT, EncodableT] = {
            "at": self._clock().isoformat(),
            "status": "published" if result.policy else "refused",
            "version": result.policy.policy_version if result.policy else "",
            "reason": result.reason,
            "provenance": codec.to_json(result.provenance),
        }
        with translated("recording a recalibration"):
            await self._client.xadd(keys.recalibrations, fields, maxlen=PROVENANCE_HISTORY, approximate=True)


def with_probe_of(current: Policy | None, result: Recalibration) -> Recalibration:
    """``result`` carrying the probe ``current`` names, and its cuts on the pre score (the pre threshold and
    the hybrid band): the statistics mix the scores of every probe the partition ran (they are kept per build,
    not per probe), so cuts fitted on them would not be the probe's; the ones published with the probe stay
    (``cloud_service.retrain.worker``). Nothing changes while the current policy names no probe."""
    if result.policy is None or current is None or not current.probe_version:
        return result
    kept = current.thresholds
    thresholds = replace(result.policy.thresholds, pre=kept.pre, hybrid_low=kept.hybrid_low,
                         hybrid_high=kept.hybrid_high)
    policy = replace(result.policy, thresholds=thresholds, probe_version=current.probe_version, probe=current.probe)
    result.provenance["probe"] = {"version": current.probe_version, "pre_kept": kept.pre,
                                  "hybrid_band_kept": [kept.hybrid_low, kept.hybrid_high]}
    return replace(result, policy=policy)


async def publish(store: PolicyTarget, policy: Policy, canary_share: float) -> Published:
    """The one place a recalibrated policy leaves the worker: a canary candidate for ``canary_share`` of
    the cohort's devices (the control at once when there is none yet, or the share is 0 or 1), which the
    rollout then promotes or rolls back (``cloud_service.policies.operations``)."""
    return await publish_candidate(store, policy, canary_share=canary_share)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
