"""The cloud service's one frozen configuration, built once in ``main()``.

Every field can be set by a flag (``--max-in-flight``) or an environment variable with the
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
from cloud_service.identity.rate import LEASE_TTL_S
from cloud_service.redis_client import check_url
from confroute.errors import InvalidInput
from confroute.logs import LOG_FORMATS
from confroute.settings import add_flags, resolve, settings_of, split_address

ENV_PREFIX = "CONFROUTE_CLOUD_"
MAX_MONITOR_WINDOW = 100_000  # each pass reads this many records per partition, up to 100 partitions


def _help(meaning: str, flag: str = "") -> dict[str, str]:
    """A field's meaning, shown by ``--help`` and in docs/configuration.md, and its flag where the field's
    name would spell it otherwise than the other commands do."""
    return {"help": meaning, "flag": flag}


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
    max_inflight: int = field(default=64, metadata=_help(
        "escalations at once; more are refused with RESOURCE_EXHAUSTED", flag="--max-in-flight"))
    max_deadline_s: float = field(
        default=30.0, metadata=_help("the longest a backend call may take, whatever the client allows"))
    retain_text: bool = field(default=False, metadata=_help(
        "hold the texts of judgeable escalations (shadow queries, post-mode escalations with a draft) for the "
        "judge, until it is done with them or text_ttl_s passes; no outcome record ever holds text"))
    text_ttl_s: int = field(default=3600, metadata=_help(
        "the longest a held text stays in Redis (its key's TTL): the backstop when the judge never gets to it"))
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
    # The loop monitor (docs/monitoring.md): off the request path, it reads the device directory and each
    # (edge model version, cohort)'s last window of outcomes; a pass costs about one window read per partition.
    monitor_interval_s: float = field(default=15.0, metadata=_help(
        "how often the loop monitor refreshes the devices and the loop windows (status API, dashboard, "
        "confroute_loop_* and confroute_devices_* gauges)"))
    monitor_window: int = field(default=2_000, metadata=_help(
        f"the newest outcomes per edge model version and cohort the loop monitor judges the live policy on "
        f"(escalation rate, ECE, AUROC, risk; at most {MAX_MONITOR_WINDOW:,})"))
    policy_signing_key: str = field(
        default="", metadata=_help("Ed25519 private key (PEM) that signs published policies; empty: unsigned"))
    bundle_dir: str = field(default="", metadata=_help(
        "folder of the bundles published for devices (docs/bundle-delivery.md); empty: no BundleService"))
    # With tens of thousands of Watch streams alive, Python's default collects so often during a policy
    # fan-out that it doubles the server's CPU per delivered update (bench.fleet: ~50 -> ~26 us at 8,000
    # watchers).
    gc_threshold: int = field(default=100_000, metadata=_help(
        "allocations between young-generation garbage collections (gc.set_threshold; 0: Python's 700)"))
    event_loop: EventLoop = field(
        default="auto", metadata=_help("auto (uvloop when installed), asyncio or uvloop"))
    allow_volatile_redis: bool = field(default=False, metadata=_help(
        "run against a Redis without an append-only file (every acknowledged outcome and policy is lost when it "
        "restarts; logged as a warning); without it such a Redis is refused"))
    # Identity (docs/identity.md): TLS with the server's certificate and key (PEM files); with a client CA,
    # a client certificate is required and identifies the device. With a client CA or an identity secret
    # (the HMAC key of bearer tokens), every call to a confroute service is authenticated.
    tls_cert: str = field(default="", metadata=_help("the server's certificate (PEM); empty: no TLS"))
    tls_key: str = field(default="", metadata=_help("the server's private key (PEM)"))
    tls_client_ca: str = field(default="", metadata=_help(
        "the fleet CA (PEM): client certificates are required and identify devices"))
    identity_secret: str = field(default="", metadata=_help(
        "file holding the HMAC key of bearer tokens: devices may present tokens"))
    # Bounds on every request (docs/identity.md); larger ones are INVALID_ARGUMENT (gRPC's own limit for
    # messages: RESOURCE_EXHAUSTED).
    max_message_bytes: int = field(default=1 << 20, metadata=_help("the largest gRPC message received (bytes)"))
    max_tokens: int = field(default=4096, metadata=_help("the most new tokens an escalation may ask for"))
    max_messages: int = field(default=256, metadata=_help("chat messages in one escalation"))
    max_prompt_bytes: int = field(default=256 * 1024, metadata=_help(
        "UTF-8 bytes of an escalation's messages (bounds its prompt tokens)"))
    max_batch_records: int = field(default=1000, metadata=_help(
        "outcome records in one upload batch (devices send 200)"))
    # Per authenticated device: rates shared by all replicas (a token bucket in Redis; 0: none) and
    # concurrent calls on each replica.
    rate_escalations_per_s: float = field(default=10.0, metadata=_help(
        "escalations a second per device, across replicas (0: no limit)"))
    rate_escalation_burst: int = field(default=40, metadata=_help("escalations a device may save up"))
    rate_uploads_per_s: float = field(default=2.0, metadata=_help(
        "upload batches a second per device, across replicas (0: no limit)"))
    rate_upload_burst: int = field(default=20, metadata=_help("upload batches a device may save up"))
    rate_lease_s: float = field(default=LEASE_TTL_S, metadata=_help(
        "how long a replica may spend tokens it took ahead of use from a busy device's bucket (0: no leases; "
        "every call checked in Redis); see docs/service-profile.md for the bound across replicas"))
    max_device_escalations: int = field(default=8, metadata=_help("escalations at once per device and replica"))
    max_device_watches: int = field(default=4, metadata=_help("policy watch streams at once per device and replica"))
    invalid_credential_burst: int = field(default=20, metadata=_help(
        "unknown or malformed tokens one address may present before it is limited (per replica)"))
    invalid_credentials_per_s: float = field(default=2.0, metadata=_help(
        "... and then per second; beyond, tokens not verified lately are refused before any lookup"))

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
        for name in ("max_message_bytes", "max_tokens", "max_messages", "max_prompt_bytes", "max_batch_records",
                     "rate_escalation_burst", "rate_upload_burst", "max_device_escalations", "max_device_watches",
                     "invalid_credential_burst"):
            _require(getattr(self, name) >= 1, name, ">= 1")
        for name in ("rate_escalations_per_s", "rate_uploads_per_s"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value >= 0, name, "a rate >= 0 (0: no limit)")
        rate = self.invalid_credentials_per_s
        _require(math.isfinite(rate) and rate > 0, "invalid_credentials_per_s", "a rate > 0")
        _require(math.isfinite(self.rate_lease_s) and 0 <= self.rate_lease_s <= 5, "rate_lease_s",
                 "seconds in [0, 5] (0: no leases)")
        _require(self.event_loop in EVENT_LOOPS, "event_loop", f"one of {EVENT_LOOPS}")
        _require(bool(self.tls_cert) == bool(self.tls_key), "tls_cert", "set together with tls_key")
        _require(not self.tls_client_ca or bool(self.tls_cert), "tls_client_ca", "used with tls_cert and tls_key")
        _require(1 <= self.monitor_window <= MAX_MONITOR_WINDOW, "monitor_window",
                 f"between 1 and {MAX_MONITOR_WINDOW}")
        for name in ("max_deadline_s", "grace_s", "readiness_interval_s", "monitor_interval_s"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, name, "a positive number of seconds")


    @property
    def authenticates(self) -> bool:
        """Whether calls must present a credential (a client CA or a token secret is configured)."""
        return bool(self.tls_client_ca or self.identity_secret)


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
