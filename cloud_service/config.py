"""The cloud service's one frozen configuration, built once in ``main()``.

Every field can be set by a flag (``--max-inflight``) or an environment variable with the
``CONFROUTE_CLOUD_`` prefix (``CONFROUTE_CLOUD_MAX_INFLIGHT``); a flag wins over the environment, the
environment over the default; :mod:`confroute.settings` reads them, as it does the edge agent's.
Nothing here reads the environment or argv on import.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from cloud_service.backends.prompt import PROMPT_FORMATS, PromptFormat
from cloud_service.event_loop import EVENT_LOOPS, EventLoop
from cloud_service.redis_client import check_url
from confroute.errors import InvalidInput
from confroute.logs import LOG_FORMATS
from confroute.settings import add_flags, resolve, settings_of

ENV_PREFIX = "CONFROUTE_CLOUD_"


def _help(meaning: str) -> dict[str, str]:
    """A field's meaning, shown by ``--help`` and in docs/configuration.md."""
    return {"help": meaning}


@dataclass(frozen=True)
class ServiceConfig:
    """What ``cloud-service serve`` needs. Addresses are ``host:port``; port 0 picks a free one."""

    listen: str = field(default="127.0.0.1:50051", metadata=_help("the gRPC service's address"))
    triton_url: str = field(default="127.0.0.1:8001", metadata=_help("Triton's gRPC address"))
    triton_model: str = field(default="echo", metadata=_help("the cloud model's name in Triton"))
    prompt_format: PromptFormat = field(
        default="chatml", metadata=_help(f"how chat messages become the model's prompt: {', '.join(PROMPT_FORMATS)}"))
    redis_url: str = field(default="redis://127.0.0.1:6379/0", metadata=_help(
        "redis://[user:password@]host[:port][/db] for one server (rediss:// for TLS), "
        "redis+cluster://[user:password@]host[:port][,host[:port]...] for a Redis Cluster "
        "(rediss+cluster:// for TLS; the listed nodes are startup nodes, one reachable is enough)"))
    max_inflight: int = field(
        default=64, metadata=_help("escalations at once; more are refused with RESOURCE_EXHAUSTED"))
    max_deadline_s: float = field(
        default=30.0, metadata=_help("the longest a backend call may take, whatever the client allows"))
    retain_text: bool = field(
        default=False, metadata=_help("keep prompt and answer texts in the outcome records of escalations"))
    log_format: str = field(default="text", metadata=_help("text, or json: one JSON object per line"))
    log_level: str = field(default="INFO", metadata=_help("the least severe level logged (DEBUG, INFO, WARNING...)"))
    metrics_listen: str = field(default="127.0.0.1:9464", metadata=_help("the address of /metrics; empty: none"))
    grace_s: float = field(default=5.0, metadata=_help("how long calls in flight may finish at shutdown"))
    # A fleet reconnecting at once (Watch bursts) needs room for all of it; 20,000 cancelled ~6,000 of a
    # 40,000-call burst in bench.fleet.
    max_pending_requests: int = field(
        default=100_000, metadata=_help("calls not yet accepted before gRPC cancels them"))
    readiness_interval_s: float = field(
        default=2.0, metadata=_help("how often the health status follows the backend"))
    policy_signing_key: str = field(
        default="", metadata=_help("Ed25519 private key (PEM) that signs published policies; empty: unsigned"))
    # With tens of thousands of Watch streams alive, Python's default collects so often during a policy
    # fan-out that it doubles the server's CPU per delivered update (bench.fleet: ~50 -> ~26 us at 8,000
    # watchers).
    gc_threshold: int = field(default=100_000, metadata=_help(
        "allocations between young-generation garbage collections (gc.set_threshold; 0: Python's 700)"))
    event_loop: EventLoop = field(
        default="auto", metadata=_help("auto (uvloop when installed), asyncio or uvloop"))

    def __post_init__(self) -> None:
        split_address(self.listen, "listen")
        if self.metrics_listen:
            split_address(self.metrics_listen, "metrics_listen")
        _require(self.prompt_format in PROMPT_FORMATS, "prompt_format", f"one of {PROMPT_FORMATS}")
        _require(self.log_format in LOG_FORMATS, "log_format", f"one of {LOG_FORMATS}")
        _check_redis_url(self.redis_url)
        _require(bool(self.triton_url and self.triton_model), "triton_url", "set, with triton_model")
        _require(self.max_inflight >= 1, "max_inflight", ">= 1")
        _require(self.max_pending_requests >= 1, "max_pending_requests", ">= 1")
        _require(self.gc_threshold >= 0, "gc_threshold", ">= 0")
        _require(self.event_loop in EVENT_LOOPS, "event_loop", f"one of {EVENT_LOOPS}")
        for name in ("max_deadline_s", "grace_s", "readiness_interval_s"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, name, "a positive number of seconds")


def split_address(address: str, name: str = "address") -> tuple[str, int]:
    """``"127.0.0.1:50051"`` -> ``("127.0.0.1", 50051)``; ``[::1]:0`` works too."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InvalidInput(f"{name} must be host:port with a port in [0, 65535], got {address!r}", field=name)
    return host.strip("[]"), int(port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field, defaulting to None so that the environment and the defaults show through."""
    add_flags(parser, settings_of(ServiceConfig), ENV_PREFIX)


def config_from(args: argparse.Namespace, environ: Mapping[str, str]) -> ServiceConfig:
    """The config from parsed flags, then ``CONFROUTE_CLOUD_*`` variables, then the defaults."""
    return ServiceConfig(**resolve(settings_of(ServiceConfig), args, environ, ENV_PREFIX))


def _check_redis_url(url: str) -> None:
    """The same URL rules as the outcome log and policy store apply, reported as a bad setting."""
    try:
        check_url(url, "redis_url")
    except ValueError as exc:
        raise InvalidInput(str(exc), field="redis_url") from exc


def _require(ok: bool, name: str, what: str) -> None:
    if not ok:
        raise InvalidInput(f"{name} must be {what}", field=name)
