"""The metrics of the cloud's workers (``recalibrate``, ``judge``), each on its own ``/metrics``.

Every worker counts its passes by result and times them, and samples its consumer group's lag on the
outcome streams after each pass. The judge counts its calls by result (the verdict mix and the failures)
and the queries of each pass by what became of them; the recalibration worker counts recalibrations by
result and exports, per (edge model version, cohort), the estimates its last pass made of the live and the
new policy (escalation rate, risk and calibration error on the logged outcomes), the targets and the
canary verdicts. Nothing is registered at import.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from cloud_service.metrics import new_registry

CANARY_VERDICTS = ("promote", "rollback", "wait")
PASS_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class WorkerMetrics:
    """One worker process's instruments; ``worker`` is its command's name."""

    def __init__(self, worker: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        self.worker = worker
        self.passes = Counter(
            "confroute_worker_passes", "Worker passes, by worker and result (ok, unavailable, error)",
            ["worker", "result"], registry=self.registry,
        )
        self.pass_seconds = Histogram(
            "confroute_worker_pass_duration_seconds", "Time of one worker pass", ["worker"],
            buckets=PASS_BUCKETS, registry=self.registry,
        )
        self.last_success = Gauge(
            "confroute_worker_last_success_timestamp_seconds", "Unix time the worker's last pass succeeded",
            ["worker"], registry=self.registry,
        )
        self.stream_lag = Gauge(
            "confroute_outcome_stream_lag", "Outcome stream entries not yet delivered to the consumer group",
            ["group"], registry=self.registry,
        )
        self.stream_pending = Gauge(
            "confroute_outcome_stream_pending", "Outcome stream entries delivered to the group, not yet acknowledged",
            ["group"], registry=self.registry,
        )
        self.judge_calls = Counter(
            "confroute_judge_calls", "Judge calls by result: correct, incorrect, no_verdict (unparseable) or failed",
            ["result"], registry=self.registry,
        )
        self.judge_queries = Counter(
            "confroute_judge_queries", "Outcome entries the judge handled, by what became of them",
            ["outcome"], registry=self.registry,
        )
        self.recalibrations = Counter(
            "confroute_recalibrations", "Recalibrations by result (published, refused)",
            ["edge_model_version", "cohort", "result"], registry=self.registry,
        )
        self.policy_escalation_rate = Gauge(
            "confroute_policy_estimated_escalation_rate",
            "Share of queries the policy escalates, estimated on the logged outcomes (policy: live or new)",
            ["edge_model_version", "cohort", "policy"], registry=self.registry,
        )
        self.policy_risk = Gauge(
            "confroute_policy_estimated_risk",
            "Share of answers kept on the edge that are wrong, estimated on labelled outcomes (policy: live or new)",
            ["edge_model_version", "cohort", "policy"], registry=self.registry,
        )
        self.policy_ece = Gauge(
            "confroute_policy_estimated_ece",
            "Expected calibration error on labelled outcomes, at the statistics' bins (policy: live or new)",
            ["edge_model_version", "cohort", "policy"], registry=self.registry,
        )
        self.target_escalation_rate = Gauge(
            "confroute_policy_target_escalation_rate", "The escalation rate the recalibration targets (rate target)",
            ["edge_model_version", "cohort"], registry=self.registry,
        )
        self.risk_bound = Gauge(
            "confroute_policy_risk_bound", "The risk bound alpha the recalibration targets (quality target)",
            ["edge_model_version", "cohort"], registry=self.registry,
        )
        self.canary_verdicts = Counter(
            "confroute_canary_verdicts", "Canary judgements by verdict (promote, rollback, wait)",
            ["edge_model_version", "cohort", "verdict"], registry=self.registry,
        )

    @property
    def instruments(self) -> tuple[MetricWrapperBase, ...]:
        """The instruments this class defines, for the documentation table."""
        return tuple(value for value in vars(self).values() if isinstance(value, MetricWrapperBase))

    def observe_pass(self, result: str, seconds: float, finished_at: float) -> None:
        """One pass ended with ``result`` (ok, unavailable, error) after ``seconds``."""
        self.passes.labels(self.worker, result).inc()
        self.pass_seconds.labels(self.worker).observe(seconds)
        if result == "ok":
            self.last_success.labels(self.worker).set(finished_at)

    def observe_judge_call(self, result: str) -> None:
        """A judge call ended: ``correct``, ``incorrect``, ``no_verdict`` or ``failed``."""
        self.judge_calls.labels(result).inc()

    def observe_judge_pass(self, outcomes: Tally[str]) -> None:
        """What a judge pass did with its entries."""
        for outcome, count in outcomes.items():
            self.judge_queries.labels(outcome).inc(count)

    def observe_recalibration(self, edge_model_version: str, cohort: str, published: bool,
                              provenance: Mapping[str, Any]) -> None:
        """One partition's recalibration and the estimates in its provenance."""
        labels = (edge_model_version, cohort)
        self.recalibrations.labels(*labels, "published" if published else "refused").inc()
        for policy, key in (("live", "before"), ("new", "after")):
            estimates = provenance.get(key)
            if isinstance(estimates, Mapping):
                _set(self.policy_escalation_rate.labels(*labels, policy), estimates.get("escalation_rate"))
                _set(self.policy_risk.labels(*labels, policy), estimates.get("risk"))
                _set(self.policy_ece.labels(*labels, policy), estimates.get("ece"))
        target = provenance.get("target")
        if isinstance(target, Mapping):
            _set(self.target_escalation_rate.labels(*labels), target.get("rate"))
            _set(self.risk_bound.labels(*labels), target.get("alpha"))
        for verdict in CANARY_VERDICTS:  # present at 0 from the start, so that increase() sees the first one
            self.canary_verdicts.labels(*labels, verdict)
        canary = provenance.get("canary")
        if isinstance(canary, Mapping) and isinstance(canary.get("verdict"), str):
            self.canary_verdicts.labels(*labels, canary["verdict"]).inc()


def _set(gauge: Any, value: object) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        gauge.set(float(value))
