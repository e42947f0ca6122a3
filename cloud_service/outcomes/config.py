"""The outcome log's settings; its Redis keys come from ``cloud_service.store.schema`` (layout there).

Each (edge model version, cohort) is a *partition* whose keys share one hash tag; a prefix that holds its
own hash tag (``confroute:{outcomes}``) puts every partition in that one slot, with one stream for all.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud_service.redis_client import check_url
from cloud_service.store.schema import OutcomeKeys, Partition, PartitionKeys

__all__ = ["OutcomeLogConfig", "Partition", "PartitionKeys"]


@dataclass(frozen=True)
class OutcomeLogConfig:
    """Where and how outcome records are logged.

    ``key_prefix`` either holds no braces (each partition gets its own hash tag, see the module
    docstring) or one Redis Cluster hash tag (``{...}``: everything in one slot). ``statistics`` keeps
    the score histograms up to date in the same script that appends an entry. The stream keeps about
    ``maxlen`` entries (``XADD MAXLEN ~``: Redis trims whole nodes, so a few hundred more may stay).
    A query id is recognised as a duplicate for ``dedupe_ttl_s`` after its first write.
    ``record()`` holds at most ``buffer_size`` records waiting for Redis (plus the batch
    being written) and drops the oldest beyond that, counting them. A record waits at most
    ``flush_interval_s`` for others to share its write (each write is a round trip and ~0.1 ms of CPU,
    so at hundreds of escalations a second a longer wait saves more than it delays). No entry holds text;
    with ``retain_text`` the texts of judgeable escalations are held for the judge for at most
    ``text_ttl_s`` (``cloud_service.outcomes.held``; the ``to-judge`` stream of ids keeps about ``maxlen``).

    ``start()`` refuses a Redis without an append-only file unless ``allow_volatile`` (see
    ``cloud_service.store.durability``); where the server has ``WAITAOF``, an acknowledged batch waits up to
    ``wait_aof_ms`` for its fsync and is refused (the device retries) if it takes longer.
    """

    url: str
    key_prefix: str = "confroute:outcomes"
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
    text_ttl_s: int = 3600
    statistics: bool = True
    allow_volatile: bool = False
    wait_aof_ms: int = 2000

    def __post_init__(self) -> None:
        check_url(self.url, "outcome log url")
        OutcomeKeys(self.key_prefix)  # validates the prefix
        for name in ("maxlen", "dedupe_ttl_s", "buffer_size", "batch_size", "wait_aof_ms", "text_ttl_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("flush_interval_s", "close_timeout_s", "connect_timeout_s", "command_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.retry_base_s <= self.retry_cap_s:
            raise ValueError("retry_base_s and retry_cap_s must satisfy 0 < retry_base_s <= retry_cap_s")

    @property
    def keys(self) -> OutcomeKeys:
        """The log's key schema."""
        return OutcomeKeys(self.key_prefix)

    @property
    def single_slot(self) -> bool:
        """True when the prefix holds its own hash tag: one stream, one slot for every partition."""
        return self.keys.single_slot

    @property
    def stream_key(self) -> str:
        """The one stream of a prefix with its own hash tag (see :meth:`partition`)."""
        return self.keys.stream

    def partition(self, edge_model_version: str, cohort: str) -> PartitionKeys:
        """The keys of one (edge model version, cohort)."""
        return self.keys.partition(Partition(edge_model_version, cohort))

    def partition_of_tag(self, tag: str) -> PartitionKeys:
        """The keys of a partition named by its tag (a member of :attr:`partitions_key`)."""
        return self.keys.partition_of_tag(tag)

    @property
    def partitions_key(self) -> str:
        """A set holding the tag of every partition that was ever written."""
        return self.keys.partitions

    def seen_key(self, query_id: str, origin: str = "device", edge_model_version: str = "", cohort: str = "") -> str:
        """The key whose existence marks ``query_id`` as already logged by ``origin`` (its value: the entry
        id). The service's record of an escalation and the device's record of the same query are two
        entries, each idempotent on its own."""
        return self.partition(edge_model_version, cohort).seen(query_id, origin)
