"""``PolicyWatcher``: follows the cloud's ``WatchPolicy`` stream in a thread and offers each policy to a
:class:`~edge_agent.cloud.policy.PolicyKeeper`.

The watch asks for the version the keeper holds, so the cloud sends the current policy only when it
differs. Each watch call has a deadline (``watch_period_s``) and is then renewed at once, so a silently
dead connection cannot hold the device forever. After a failure the watcher reconnects with the jittered
``reconnect`` backoff: a fleet that lost the cloud together comes back spread out, ramping up from short
waits to at most ``reconnect.cap_s``; the ramp starts over once a watch delivers a policy. A watch that
had been serving (delivered a policy, or stayed open a second) and then broke (the cloud restarting
under the whole fleet) starts the ramp two steps up (by default a uniform wait in [0, 4 s)), so tens of
thousands of devices do not all come back within the first second. The cloud serves a burst anyway (its
pending-call limits are raised), but a spread-out reconnect keeps the fan-out latency of the first
policy after an outage low.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from types import TracebackType
from typing import Any

import grpc

from confroute.contract import PolicyRequest
from confroute.v1 import fleet_pb2_grpc
from edge_agent.cloud.channel import call_metadata, open_channel
from edge_agent.cloud.config import CloudConfig
from edge_agent.cloud.policy import PolicyKeeper
from edge_agent.cloud.status import status_code

logger = logging.getLogger(__name__)

_RENEWED = grpc.StatusCode.DEADLINE_EXCEEDED  # the watch period ended: not a failure
_BROKEN_SPREAD = 2  # a broken stream's first reconnect waits up to reconnect.base_s * multiplier ** 2
_SERVING_S = 1.0  # a watch open this long (or that delivered a policy) was serving, not failing to connect


class PolicyWatcher:
    """A background thread applying pushed policies; :meth:`start`, then :meth:`stop` (or use ``with``)."""

    def __init__(
        self,
        keeper: PolicyKeeper,
        config: CloudConfig,
        device_id: str,
        *,
        channel: grpc.Channel | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._keeper = keeper
        self._config = config
        self._device_id = device_id
        self._owns_channel = channel is None
        self._channel = open_channel(config) if channel is None else channel
        self._stub = fleet_pb2_grpc.FleetServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._metadata = call_metadata(config)
        self._rng = rng if rng is not None else random.Random()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._call: Any = None
        self._thread: threading.Thread | None = None
        self.received = 0  # policies delivered by the cloud, applied or not

    def start(self) -> None:
        """Starts watching in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the policy watcher was already started")
        self._thread = threading.Thread(target=self._run, name="policy-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancels the watch, waits up to ``timeout_s`` for the thread, and closes an owned channel."""
        self._stopping.set()
        with self._lock:
            call = self._call
        if call is not None:
            call.cancel()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> PolicyWatcher:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                delivered, code = self._watch_once()
            except Exception:  # a bug must not end the device's policy updates for good
                logger.exception("policy watch failed unexpectedly")
                delivered, code = 0, grpc.StatusCode.UNKNOWN
            if self._stopping.is_set():
                return
            if delivered or code is _RENEWED:
                failures = 0
            # A watch that was serving and then broke most likely broke for the whole fleet at once (a cloud
            # restart): the first reconnect is spread over a wider window than a failed first connect.
            served = delivered or time.monotonic() - started >= _SERVING_S
            spread = _BROKEN_SPREAD if served and code is not _RENEWED else 0
            delay = self._config.reconnect.delay(failures + spread, self._rng)
            if code is not _RENEWED:
                failures += 1
                log = logger.warning if failures == 1 else logger.debug  # one warning per outage
                log("policy watch ended (%s); reconnecting in %.2f s", code.name if code else "closed", delay)
            self._stopping.wait(delay)

    def _watch_once(self) -> tuple[int, grpc.StatusCode | None]:
        """One watch call: how many policies it delivered and the status it ended with (None: OK)."""
        keeper = self._keeper
        request = PolicyRequest(keeper.edge_model, keeper.cohort, self._device_id, keeper.received_version)
        call = self._stub.WatchPolicy(
            request.to_watch_pb(), timeout=self._config.watch_period_s, metadata=self._metadata
        )
        with self._lock:
            self._call = call
        if self._stopping.is_set():  # stop() may have run before the call was published
            call.cancel()
        delivered = 0
        try:
            for response in call:
                delivered += 1
                self.received += 1
                keeper.offer_pb(response.policy)
        except grpc.RpcError as exc:
            return delivered, status_code(exc)
        finally:
            with self._lock:
                self._call = None
        return delivered, None
