"""``RetrainWorker``: refits the router probe per (edge model build, cohort) from the fleet's own labels.

Per pass and partition of the edge build it runs (``bundle``): it reads the partition's ``labels`` stream
as a consumer of its own group (``retrain``; the entries only say that labels arrived since the last
pass: a partition without new labels is left alone), joins the cloud-extracted features
(:class:`FeatureStore`) with each query's label (its ``labelled`` marker: judge, user feedback or gold,
the first one written), refits (:func:`cloud_service.retrain.fit.refit`) and, only when the new probe
beats the live one on the held-out slice, publishes it (``router-probe``: a :class:`RouterProbe`, signed
with the policy signing key when the worker has one). With a policy store it then publishes the policy
that introduces the probe: the partition's current policy (else the built-in default) naming the probe and
carrying it, as a canary candidate like any recalibrated policy (``publish_candidate``: canary, promote,
rollback). Its pre threshold is computed on the new probe's held-out scores
(:func:`cloud_service.retrain.fit.transferred_threshold`): it escalates the share of the held-out queries
that the current policy's threshold escalates with the live probe (the same operating point), or, where the
live probe tells the held-out queries apart not at all (an untrained probe), it stays: both probes give a
probability of the same label. Its other thresholds stay the current policy's. The recalibration worker
carries the probe and this pre threshold forward (its statistics mix the old probe's scores with the new
one's). The live probe is the
one published last, else the bundle's own TBG probe. Every pass of a partition, refused
or not, appends its provenance (sizes, both AUROCs, the chosen layers and L2, the reason) to the
partition's ``retrains`` stream; a refusal is logged with its reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.consumer import GroupConsumer, GroupSettings
from cloud_service.policies.operations import RolloutStore, publish_candidate
from cloud_service.redis_client import RedisClient, translated
from cloud_service.retrain.artifact import RouterProbe
from cloud_service.retrain.config import RetrainConfig
from cloud_service.retrain.features import FeatureStore
from cloud_service.retrain.fit import Refit, refit, transferred_threshold
from cloud_service.store.schema import PartitionKeys
from confroute.bundle.manifest import Manifest
from confroute.bundle.probe import read_probe
from confroute.bundle.store import load_bundle
from confroute.contract import ModelRef, Policy
from confroute.probes.selection import FeatureLayout, split
from confroute.routing import default_policy
from confroute.signing import SigningKey, sign_probe

logger = logging.getLogger(__name__)

TBG = "tbg"
_KEEP = {b"c": 1, b"w": 0}


class PolicyTarget(RolloutStore, Protocol):
    """Where the policy that introduces a probe goes: the policy store (``RedisPolicyStore``)."""

    async def current(self, edge_model_version: str, cohort: str, device_id: str = "") -> Policy | None: ...


@dataclass(frozen=True)
class RetrainResult:
    """One partition's pass: what it decided, and the probe it published (None if refused)."""

    edge_model_version: str
    cohort: str
    refit: Refit
    published: RouterProbe | None

    @property
    def reason(self) -> str:
        return self.refit.reason


class RetrainWorker:
    """Refits and publishes router probes for the edge build at ``bundle`` (see the module docstring)."""

    def __init__(self, client: RedisClient, log: OutcomeLogConfig, bundle: Path, config: RetrainConfig,
                 *, signer: SigningKey | None = None, policies: PolicyTarget | None = None) -> None:
        self._client = client
        self._signer = signer
        self._policies = policies
        self._log = log
        self._bundle = bundle
        self._manifest: Manifest = load_bundle(bundle, verify=False)
        self._config = config
        self._features = FeatureStore(client, log, config.max_features)
        settings = GroupSettings(config.group, config.consumer, config.batch_size, config.claim_idle_s)
        self._consumer = GroupConsumer(client, settings)

    @property
    def layout(self) -> FeatureLayout:
        probe = self._manifest.probe
        layers = probe.last_layer - probe.first_layer + 1
        return FeatureLayout(probe.first_layer, probe.last_layer, probe.feature_dim // layers)

    async def run_once(self) -> list[RetrainResult]:
        """One pass over the partitions of this edge build that have new labels."""
        with translated("listing outcome partitions"):
            tags = await self._client.smembers(self._log.partitions_key)
        results = []
        for tag in sorted(_text(t) for t in tags):
            keys = self._log.partition_of_tag(tag)
            if keys.partition.edge_model_version != self._manifest.build_version:
                continue
            if await self._new_labels(keys):
                results.append(await self._retrain(keys))
        return results

    async def _new_labels(self, keys: PartitionKeys) -> int:
        """How many labels arrived since the last pass (acknowledged: counted once)."""
        new = 0
        async for entries in self._consumer.batches(keys.labels):
            new += len(entries)
            await self._consumer.ack(keys.labels, [ident for ident, _ in entries])
        return new

    async def _retrain(self, keys: PartitionKeys) -> RetrainResult:
        partition = keys.partition
        features, keep = await self._examples(keys)
        live = await self._live(keys)
        decided = refit(features, keep, self.layout, (live.weight, live.bias), self._config)
        published = None
        if decided.publish:
            assert decided.fit is not None
            published = RouterProbe.of(partition.edge_model_version, partition.cohort,
                                    decided.fit.weight.astype(np.float32), decided.fit.bias, decided.fit.layers,
                                    _provenance(decided, live))
            if self._signer is not None:
                published = sign_probe(published, self._signer)
            _, val = split(keep, self._config.val_frac, self._config.seed)  # the slice refit held out
            # the policy first: a probe is recorded as published only once a policy carries it to devices
            await self._publish_policy(published, _probability(live.score(features[val])),
                                       _probability(published.score(features[val])))
            with translated("publishing a router probe"):
                await self._client.set(keys.router_probe, published.to_json())
            logger.info("retrain %s|%s: published %s (held-out AUROC %.3f, live %.3f, %d examples)",
                        partition.edge_model_version, partition.cohort, published.version, decided.new_auroc,
                        decided.live_auroc, decided.examples)
        else:
            logger.warning("retrain %s|%s refused: %s", partition.edge_model_version, partition.cohort,
                           decided.reason)
        await self._record(keys, decided, live, published)
        return RetrainResult(partition.edge_model_version, partition.cohort, decided, published)

    async def _publish_policy(self, probe: RouterProbe, live_scores: npt.NDArray[np.float64],
                              new_scores: npt.NDArray[np.float64]) -> None:
        """The policy that introduces ``probe`` (see the module docstring); none without a policy store."""
        if self._policies is None:
            return
        version, cohort = probe.edge_model_version, probe.cohort
        current = await self._policies.current(version, cohort)
        base = current or default_policy(ModelRef(self._manifest.model_id, version), cohort)
        pre = transferred_threshold(live_scores, new_scores, base.thresholds.pre)
        # the band's cuts move the same way: each keeps the share of queries below it
        low = transferred_threshold(live_scores, new_scores, base.thresholds.hybrid_low)
        high = max(low, transferred_threshold(live_scores, new_scores, base.thresholds.hybrid_high))
        now = datetime.now(timezone.utc)
        policy = replace(base, policy_version=f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{probe.version}",
                         issued_at=now, signature=b"", key_id="", probe_version=probe.version, probe=probe,
                         thresholds=replace(base.thresholds, pre=pre, hybrid_low=low, hybrid_high=high))
        published = await publish_candidate(self._policies, policy, self._config.canary_share, reason="new probe")
        logger.info("retrain %s|%s: policy %s names probe %s (%s), pre threshold %.4f (was %.4f on the live probe)",
                    version, cohort, published.version, probe.version, published.role, pre, base.thresholds.pre)

    async def _examples(self, keys: PartitionKeys) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
        """The stored features of the partition's labelled queries, and their router labels."""
        partition = keys.partition
        query_ids, features = await self._features.read(partition.edge_model_version, partition.cohort)
        if not query_ids:
            return np.zeros((0, self._manifest.probe.feature_dim), np.float32), np.zeros(0, np.int8)
        with translated("reading label markers"):
            raw = await self._client.mget([keys.labelled(query_id) for query_id in query_ids])
        codes = [code if isinstance(code, bytes) else b"" for code in raw]
        # By query id: the same examples give the same split and fit whatever order they were stored in.
        rows = sorted((i for i, code in enumerate(codes) if code in _KEEP), key=query_ids.__getitem__)
        return features[rows], np.array([_KEEP[codes[i]] for i in rows], np.int8)

    async def _live(self, keys: PartitionKeys) -> RouterProbe:
        """The probe devices of this partition route with: with a policy store, the one the partition's current
        policy carries (the bundle's own when it names none: a rolled-back probe is not live); without one, the
        probe published last, else the bundle's."""
        partition = keys.partition
        if self._policies is not None:
            current = await self._policies.current(partition.edge_model_version, partition.cohort)
            if current is not None and current.probe is not None:
                return current.probe
            if current is not None:
                return self._bundle_probe(partition.cohort)
        with translated("reading the published router probe"):
            text = await self._client.get(keys.router_probe)
        if text is not None:
            return RouterProbe.from_json(text)
        return self._bundle_probe(partition.cohort)

    def _bundle_probe(self, cohort: str) -> RouterProbe:
        weights, biases = read_probe(self._bundle, self._manifest)
        column = self._manifest.probe.outputs.index(TBG)
        probe = self._manifest.probe
        return RouterProbe.of(self._manifest.build_version, cohort, weights[:, column],
                              float(biases[column]), (probe.first_layer, probe.last_layer), {"source": "bundle"})

    async def _record(self, keys: PartitionKeys, decided: Refit, live: RouterProbe,
                      published: RouterProbe | None) -> None:
        fit = decided.fit
        fields = {"at": f"{time.time():.3f}", "examples": str(decided.examples), "keep": str(decided.keep),
                  "new_auroc": _num(decided.new_auroc), "live_auroc": _num(decided.live_auroc),
                  "live": live.version, "published": published.version if published else "",
                  "layers": f"{fit.layers[0]}..{fit.layers[1]}" if fit else "", "l2": _num(fit.l2 if fit else None),
                  "reason": decided.reason}
        with translated("recording a retrain"):
            await self._client.xadd(keys.retrains, fields, maxlen=10_000, approximate=True)  # type: ignore[arg-type]


def _provenance(decided: Refit, live: RouterProbe) -> dict[str, object]:
    fit = decided.fit
    assert fit is not None
    return {"label": "route (edge right = keep)", "examples": decided.examples, "keep": decided.keep,
            "n_train": fit.n_train, "n_val": fit.n_val, "cv_auroc": fit.cv_auroc, "held_out_auroc": fit.val_auroc,
            "live_held_out_auroc": decided.live_auroc, "replaces": live.version, "l2": fit.l2,
            "layers": list(fit.layers), "at": time.time()}


def _probability(logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-logits)), np.float64)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
