"""Assembles a running agent from its config: model, policy keeper and watcher, outbox and uploader,
escalation client. A context manager: everything it starts, it stops."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from confroute.contract import ModelRef
from edge_agent.cloud import EscalationClient, PolicyKeeper, PolicyWatcher, open_channel, signature_check
from edge_agent.cloud.channel import call_metadata
from edge_agent.cloud.policy import probe_signature_check
from edge_agent.cloud.probe_header import with_probe_version
from edge_agent.cloud.probe_install import ProbeInstaller
from edge_agent.config import AgentConfig
from edge_agent.core import AgentIdentity, EdgeAgent
from edge_agent.model import EdgeModel, runtime_options
from edge_agent.outbox import GrpcOutcomeSink, OutcomeQueue, QueueConfig, Uploader
from edge_agent.outbox.feedback import FeedbackDesk
from edge_agent.routing import PrivacyRules

if TYPE_CHECKING:
    from edge_agent.api.metrics import DeviceSnapshot


@dataclasses.dataclass(frozen=True)
class RunningDevice:
    """The agent, and what the device reports beside it (``/metrics``: outbox, breaker, policy)."""

    agent: EdgeAgent
    status: Callable[[], DeviceSnapshot]


@contextlib.contextmanager
def running_agent(config: AgentConfig) -> Iterator[EdgeAgent]:
    with running_device(config) as device:
        yield device.agent


@contextlib.contextmanager
def running_device(config: AgentConfig) -> Iterator[RunningDevice]:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    model = EdgeModel(config.bundle, runtime_options(config.device, config.threads), max_batch=config.batch)
    probes = ProbeInstaller(Path(config.bundle), model.version, model.load, model.swap, lambda: model.engine.manifest,
                            config.state_dir, verify=probe_signature_check(config.policy_keys))
    keeper = PolicyKeeper(ModelRef(model.model_id, model.version), config.cohort, config.policy_path,
                          verify_signature=signature_check(config.policy_keys), probes=probes)
    privacy = PrivacyRules.compile(config.privacy_patterns, never_escalate=config.never_escalate)
    with contextlib.ExitStack() as stack:
        stack.callback(model.close)
        queue = stack.enter_context(OutcomeQueue(QueueConfig(config.queue_path)))
        labels = stack.enter_context(OutcomeQueue(QueueConfig(config.state_dir / "feedback.db", remember=0)))
        client = uploader = label_uploader = None
        if config.cloud is not None:
            cloud = dataclasses.replace(config.cloud, probe_version="")  # each call reads the live one:

            def channel_for_calls() -> grpc.Channel:
                opened = open_channel(cloud)
                stack.callback(opened.close)
                return with_probe_version(opened, lambda: model.probe_version)

            client = stack.enter_context(EscalationClient(cloud, channel=channel_for_calls()))
            channel = channel_for_calls()
            sink = GrpcOutcomeSink(channel, deadline_s=cloud.deadline_s, metadata=call_metadata(cloud))
            uploader = Uploader(queue, sink)
            label_uploader = Uploader(labels, GrpcOutcomeSink(channel, deadline_s=cloud.deadline_s,
                                                              metadata=call_metadata(cloud), labels=True))
            for running in (uploader, label_uploader):
                running.start()
                stack.callback(running.stop)
            stack.enter_context(PolicyWatcher(keeper, cloud, config.device_id, channel=channel_for_calls()))
        feedback = FeedbackDesk(queue, labels, on_rated=label_uploader.wake if label_uploader else None)
        agent = EdgeAgent(model, keeper, queue, AgentIdentity(config.device_id, config.cohort), escalator=client,
                          privacy=privacy, on_recorded=uploader.wake if uploader else None, feedback=feedback)
        stack.callback(agent.close)
        yield RunningDevice(agent, _status_of(agent, queue, client, model.version, lambda: model.probe_version))


def _status_of(agent: EdgeAgent, queue: OutcomeQueue, client: EscalationClient | None,
               model_version: str, probe_version: Callable[[], str]) -> Callable[[], DeviceSnapshot]:
    def status() -> DeviceSnapshot:
        from edge_agent.api.metrics import DeviceSnapshot

        breaker = None if client is None else client.breaker.state.value
        outbox = queue.stats()
        return DeviceSnapshot(outbox.queued, breaker, agent.policy.policy_version, model_version,
                              outbox_evicted=outbox.evicted_total, outcomes_unrecorded=agent.outcomes_unrecorded,
                              probe_version=probe_version())  # a delivered probe changes it

    return status
