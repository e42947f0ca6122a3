"""An agent over a tiny bundle, with a real outbox, a policy keeper and (when asked) a cloud."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from confroute.bundle import load_bundle
from confroute.bundle.probe import write_probe
from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds
from confroute.routing import default_policy
from edge_agent.cloud import CloudConfig, EscalationClient, PolicyKeeper
from edge_agent.core import AgentIdentity, EdgeAgent
from edge_agent.model import EdgeModel
from edge_agent.outbox import OutcomeQueue, QueueConfig
from edge_agent.routing import PrivacyRules
from tests.edge_agent.cloud.real_cloud import RealCloud

MakeAgent = Callable[..., EdgeAgent]


def policy_for(model: EdgeModel, mode: RoutingMode, *, pre: float = 0.5, post: float = 0.5, low: float = 0.2,
               high: float = 0.8, shadow: float = 0.0) -> Policy:
    base = default_policy(ModelRef(model.model_id, model.version), "test")
    return dataclasses.replace(base, policy_version="t1", mode=mode, shadow_rate=shadow,
                               thresholds=Thresholds(pre=pre, post=post, hybrid_low=low, hybrid_high=high),
                               issued_at=datetime.now(timezone.utc) - timedelta(seconds=1))


def with_tbg(bundle: Path, confidence: float) -> Path:
    """Trains nothing: sets the TBG probe to a constant score (zero weights, bias = logit)."""
    dim = load_bundle(bundle).probe.feature_dim
    write_probe(bundle, "tbg", np.zeros(dim), float(np.log(confidence / (1 - confidence))), {"labels": "test"})
    return bundle


@pytest.fixture
def real_cloud() -> Iterator[RealCloud]:
    cloud = RealCloud()
    yield cloud
    cloud.close()


@pytest.fixture
def make_agent(tiny_bundle: Path, tmp_path: Path) -> Iterator[MakeAgent]:
    made: list[tuple[EdgeAgent, OutcomeQueue, EscalationClient | None]] = []
    models: list[EdgeModel] = []

    def make(mode: RoutingMode = RoutingMode.POST, *, cloud: str | None = None, tbg: float | None = None,
             privacy: PrivacyRules | None = None, deadline_s: float = 3.0, batch: int = 1,
             **thresholds: float) -> EdgeAgent:
        if tbg is not None:
            with_tbg(tiny_bundle, tbg)
        model = EdgeModel(tiny_bundle, max_batch=batch)
        keeper = PolicyKeeper(ModelRef(model.model_id, model.version), "test")
        assert keeper.offer(policy_for(model, mode, **thresholds)).applied
        queue = OutcomeQueue(QueueConfig(tmp_path / f"outbox-{len(made)}.db"))
        client = EscalationClient(CloudConfig(target=cloud, deadline_s=deadline_s, retries=0)) if cloud else None
        agent = EdgeAgent(model, keeper, queue, AgentIdentity("device-1", "test"), escalator=client,
                          privacy=privacy, rng=random.Random(7))
        made.append((agent, queue, client))
        models.append(model)
        return agent

    yield make
    for agent, queue, client in made:
        agent.close()
        queue.close()
        if client is not None:
            client.close()
    for model in models:
        model.close()
