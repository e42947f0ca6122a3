"""The fleet on loopback for ``tests/test_fleet_loop.py``: a real ``redis-server``, the cloud service
(grpc.aio on its own event-loop thread, with the production Redis outcome log and policy store, signing
every policy it issues), tritonserver's echo model as the cloud model, and two edge agents assembled by
``edge_agent.app.running_agent`` that trust only the service's public key.

A device's policy is read from the keeper it routes with, and from the ``policy_version`` each answer reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import random
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from concurrent import futures
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
import redis

from cloud_service.calibration import RecalibrationConfig, RecalibrationWorker
from cloud_service.config import ServiceConfig
from cloud_service.identity.ca import init_ca
from cloud_service.identity.record import DEVICE_SCOPES, Principal
from cloud_service.identity.registry import IdentityRegistry
from cloud_service.identity.tokens import TokenHasher, load_secret, new_token
from cloud_service.outcomes import codec
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.labels import LabelWriter, LateLabel
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.redis_client import connect
from cloud_service.server.runner import start_service
from cloud_service.stores import open_redis_stores
from confroute.backoff import Backoff
from confroute.contract import ModelRef, Policy
from confroute.contract.enums import Label, LabelSource
from confroute.contract.outcome import OutcomeRecord
from confroute.engine import SamplingParams
from confroute.signing import SigningKey
from confroute.v1 import fleet_pb2, fleet_pb2_grpc
from edge_agent.answer import AgentAnswer
from edge_agent.app import running_agent
from edge_agent.cloud import CloudConfig
from edge_agent.config import AgentConfig
from edge_agent.core import EdgeAgent
from tests.cloud_service.redis_server import RedisServer
from tests.harness import LoopThread

T = TypeVar("T")
WAIT_S = 20.0
PARAMS = SamplingParams(max_new_tokens=3)
_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
          "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey")


def questions(tag: str, n: int) -> list[str]:
    """``n`` questions drawn from one mix (a few words and a number); ``tag`` seeds the draw, so another tag
    gives other questions with the same distribution of confidences."""
    rng = random.Random(tag)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 5))) + f" {rng.randint(0, 99)}?"
            for _ in range(n)]


@dataclasses.dataclass
class Device:
    """One running edge agent."""

    device_id: str
    agent: EdgeAgent
    state_dir: Path

    @property
    def policy(self) -> Policy:
        """The policy the device routes with now (its saved ``policy.json`` is written a moment before the
        swap, so it cannot tell when routing changed)."""
        return self.agent.policy

    def runs(self, version: str) -> bool:
        return self.policy.policy_version == version

    def ask(self, question: str) -> AgentAnswer:
        return self.agent.answer([{"role": "user", "content": question}], PARAMS)


@dataclasses.dataclass(frozen=True)
class Servers:
    """What the fleet shares with the rest of the module: tritonserver, the bundle, the keys."""

    triton_url: str
    bundle: Path
    edge_model: ModelRef
    signer: SigningKey
    private_key: Path
    public_key: Path


class Fleet:
    """Redis, the cloud service and two devices of one cohort; ``close()`` stops everything it started."""

    def __init__(self, servers: Servers, workdir: Path, cohort: str, device_ids: Sequence[str], *,
                 retain_text: bool = False) -> None:
        self.servers = servers
        self.cohort = cohort
        self.retain_text = retain_text
        self.log_config: OutcomeLogConfig
        self._exit = contextlib.ExitStack()
        try:
            self._start(workdir, device_ids)
        except BaseException:
            self._exit.close()
            raise

    def _start(self, workdir: Path, device_ids: Sequence[str]) -> None:
        self.redis = self._exit.enter_context(RedisServer())
        self.log_config = OutcomeLogConfig(url=self.redis.url)
        self.loop = LoopThread("fleet-loop")
        self._exit.callback(self.loop.close)
        init_ca(workdir / "fleet-ca")  # identity on: every device is enrolled and presents its token
        config = ServiceConfig(listen="127.0.0.1:0", triton_url=self.servers.triton_url, triton_model="echo",
                               prompt_format="plain", redis_url=self.redis.url, metrics_listen="",
                               readiness_interval_s=0.1, grace_s=0.2,
                               policy_signing_key=str(self.servers.private_key),
                               identity_secret=str(workdir / "fleet-ca" / "identity.secret"),
                               rate_escalations_per_s=1000.0, rate_escalation_burst=1000,
                               rate_uploads_per_s=100.0, rate_upload_burst=100, retain_text=self.retain_text)
        service_stack = AsyncExitStack()
        running = self.loop.run(start_service(config, open_redis_stores, service_stack), timeout_s=60.0)
        self._exit.callback(lambda: self.loop.run(service_stack.aclose()))
        self.target = f"127.0.0.1:{running.server.port}"
        self.store = self.loop.run(self._new_store(self.servers.signer))
        self._exit.callback(lambda: self.loop.run(self.store.close()))
        self.client = self.loop.run(self._new_client())
        self._exit.callback(lambda: self.loop.run(self.client.aclose()))
        secret = load_secret(workdir / "fleet-ca" / "identity.secret")
        self.tokens = {device_id: self.loop.run(self._enrol(device_id, secret)) for device_id in device_ids}
        self.devices = [self._device(workdir, device_id) for device_id in device_ids]

    async def _enrol(self, device_id: str, secret: TokenHasher) -> str:
        """Enrols a device of this cohort (as ``cloud-service devices enroll`` does) and returns its token."""
        token = new_token()
        await IdentityRegistry(self.client).create(Principal(
            device_id, "device", self.cohort, int(time.time()), 0, DEVICE_SCOPES, token_hash=secret.hash(token)))
        return token

    async def _new_store(self, signer: SigningKey) -> RedisPolicyStore:
        return RedisPolicyStore(PolicyStoreConfig(url=self.redis.url), signer=signer)

    async def _new_client(self) -> Any:
        return connect(self.redis.url, connect_timeout_s=1.0, command_timeout_s=10.0)

    def _device(self, workdir: Path, device_id: str) -> Device:
        config = self.device_config(device_id, workdir / device_id, self.target)
        return self._exit.enter_context(device_of(config))

    def device_config(self, device_id: str, state_dir: Path, target: str) -> AgentConfig:
        """A device of this cohort, trusting the cloud's key, following the cloud at ``target``."""
        cloud = CloudConfig(target=target, deadline_s=30.0, reconnect=Backoff(base_s=0.05, cap_s=0.5),
                            token=self.tokens.get(device_id, ""))
        return AgentConfig(bundle=self.servers.bundle, device="cpu", threads=1, device_id=device_id,
                           cohort=self.cohort, state_dir=state_dir, cloud=cloud, privacy_patterns=(),
                           never_escalate=False, http_host="127.0.0.1", http_port=0, log_format="text",
                           policy_keys=(self.servers.public_key,))

    def close(self) -> None:
        self._exit.close()

    # -- the cloud's side --------------------------------------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = WAIT_S) -> T:
        return self.loop.run(coroutine, timeout_s)

    def publish(self, policy: Policy, store: RedisPolicyStore | None = None) -> Policy:
        """Publishes ``policy`` as the control (signed by ``store``'s key) and returns it as issued."""
        chosen = store or self.store

        async def publish() -> Policy:
            await chosen.publish(policy)
            issued = await chosen.version(policy.edge_model.version, policy.cohort, policy.policy_version)
            assert issued is not None
            return issued

        return self.run(publish())

    def other_store(self, signer: SigningKey | None) -> RedisPolicyStore:
        """A second writer of the same Redis (an attacker's or a misconfigured tool's), closed with the fleet."""
        store = self.run(self._new_store(signer) if signer else self._unsigned_store())
        self._exit.callback(lambda: self.run(store.close()))
        return store

    async def _unsigned_store(self) -> RedisPolicyStore:
        return RedisPolicyStore(PolicyStoreConfig(url=self.redis.url))

    def worker(self, config: RecalibrationConfig, clock: Callable[[], datetime] | None = None) -> RecalibrationWorker:
        if clock is None:
            return RecalibrationWorker(self.client, self.log_config, self.store, config)
        return RecalibrationWorker(self.client, self.log_config, self.store, config, clock=clock)

    # -- the devices' side -------------------------------------------------------------------------

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    def wait_until_running(self, version: str, devices: Iterable[Device] | None = None) -> None:
        for device in self.devices if devices is None else devices:
            self.wait_until(functools.partial(device.runs, version), f"{device.device_id} to run policy {version}")

    def ask(self, device: Device, tag: str, n: int) -> list[AgentAnswer]:
        return [device.ask(question) for question in questions(f"{tag}-{device.device_id}", n)]

    def ask_all(self, tag: str, n_per_device: int) -> list[AgentAnswer]:
        return [answer for device in self.devices for answer in self.ask(device, tag, n_per_device)]

    # -- the outcome log -----------------------------------------------------------------------------

    def device_records(self, answers: Sequence[AgentAnswer]) -> list[OutcomeRecord]:
        """The devices' own records of these answers, once every one has been uploaded into Redis."""
        wanted = {answer.query_id for answer in answers}
        found: dict[str, OutcomeRecord] = {}

        def arrived() -> bool:
            found.clear()
            found.update((r.query_id, r) for r in self._stream_records() if r.query_id in wanted)
            return len(found) == len(wanted)

        self.wait_until(arrived, f"{len(wanted)} outcomes in Redis")
        return [found[answer.query_id] for answer in answers]

    def _stream_records(self) -> list[OutcomeRecord]:
        stream = self.log_config.partition(self.servers.edge_model.version, self.cohort).stream
        with redis.Redis.from_url(self.redis.url) as client:
            entries = client.xrange(stream)
        return [codec.decode(fields) for _, fields in entries if fields.get(b"origin") == b"device"]

    def label(self, records: Iterable[OutcomeRecord], correct: Callable[[OutcomeRecord], bool]) -> None:
        """Gold labels, written back into the log as a benchmark's reference answers would be."""
        writer = LabelWriter(self.client, self.log_config)

        async def write_all() -> None:
            for record in records:
                label = Label.CORRECT if correct(record) else Label.INCORRECT
                await writer.write(LateLabel(record, label, LabelSource.REFERENCE))

        self.run(write_all(), timeout_s=60.0)


class RogueFleet:
    """A FleetService that is not the cloud (a man in the middle, a compromised host): every watch gets
    ``pushes`` as they are, then stays open until the device hangs up."""

    def __init__(self, pushes: Sequence[fleet_pb2.Policy]) -> None:
        self.pushes = list(pushes)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        fleet_pb2_grpc.add_FleetServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _RogueServicer(self.pushes), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.stop(0).wait(WAIT_S)


class _RogueServicer(fleet_pb2_grpc.FleetServiceServicer):  # type: ignore[misc]
    def __init__(self, pushes: Sequence[fleet_pb2.Policy]) -> None:
        self._pushes = pushes

    def WatchPolicy(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        for policy in self._pushes:
            yield fleet_pb2.WatchPolicyResponse(policy=policy)
        while context.is_active():
            time.sleep(0.05)


@contextlib.contextmanager
def device_of(config: AgentConfig) -> Iterator[Device]:
    """A device started from ``config`` (its state folder may hold a saved policy)."""
    with running_agent(config) as agent:
        yield Device(config.device_id, agent, config.state_dir)
