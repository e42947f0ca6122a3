"""The outcome log's settings, and the Redis keys they imply."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_service.outcomes.redis_client import check_url, hash_tag


@dataclass(frozen=True)
class OutcomeLogConfig:
    """Where and how outcome records are logged.

    ``key_prefix`` must hold a Redis Cluster hash tag (``{...}``) so the stream and its dedupe keys share
    a slot. The stream keeps about ``maxlen`` entries (``XADD MAXLEN ~``: Redis trims whole nodes, so a
    few hundred more may stay). A query id is recognised as a duplicate for ``dedupe_ttl_s`` after its
    first write. ``record()`` holds at most ``buffer_size`` records waiting for Redis (plus the batch
    being written) and drops the oldest beyond that, counting them. A record waits at most
    ``flush_interval_s`` for others to share its write (each write is a round trip and ~0.1 ms of CPU,
    so at hundreds of escalations a second a longer wait saves more than it delays). Prompt and answer
    texts are stored only with ``retain_text``.
    """

    url: str
    key_prefix: str = "confroute:{outcomes}"
    maxlen: int = 10_000_000
    dedupe_ttl_s: int = 7 * 24 * 3600
    buffer_size: int = 100_000
    batch_size: int = 1000
    flush_interval_s: float = 0.05
    close_timeout_s: float = 5.0
    connect_timeout_s: float = 1.0
    command_timeout_s: float = 5.0
    retry_base_s: float = 0.05
    retry_cap_s: float = 2.0
    retain_text: bool = False

    def __post_init__(self) -> None:
        check_url(self.url, "outcome log url")
        if not hash_tag(self.key_prefix):
            raise ValueError(f"key_prefix must contain a hash tag such as {{outcomes}}, got {self.key_prefix!r}")
        for name in ("maxlen", "dedupe_ttl_s", "buffer_size", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("flush_interval_s", "close_timeout_s", "connect_timeout_s", "command_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.retry_base_s <= self.retry_cap_s:
            raise ValueError("retry_base_s and retry_cap_s must satisfy 0 < retry_base_s <= retry_cap_s")

    @property
    def stream_key(self) -> str:
        """The stream holding one entry per outcome."""
        return f"{self.key_prefix}:stream"

    def seen_key(self, query_id: str, origin: str = "device") -> str:
        """The key whose existence marks ``query_id`` as already logged by ``origin`` (its value: the entry
        id). The service's record of an escalation and the device's record of the same query are two
        entries, each idempotent on its own."""
        return f"{self.key_prefix}:seen:{origin}:{query_id}"
