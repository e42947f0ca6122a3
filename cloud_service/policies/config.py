"""The policy store's settings; its Redis keys come from ``cloud_service.store.schema``."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_service.redis_client import check_url
from cloud_service.store.schema import Partition, PolicyKeys


@dataclass(frozen=True)
class PolicyStoreConfig:
    """Where policies live and how watchers wait for new ones.

    Each (edge model version, cohort) has its own rollout history stream, about ``history`` entries
    long, whose last entry is the current rollout state, and a hash of its stored versions.
    ``key_prefix`` must not contain ``{`` or ``}``: the
    key's hash tag is its (edge model version, cohort). A watcher blocks up to ``watch_block_s`` per
    read (less than ``command_timeout_s``) and retries a lost Redis with jittered backoff.
    """

    url: str
    key_prefix: str = "confroute:policy"
    history: int = 1000
    watch_block_s: float = 1.0
    connect_timeout_s: float = 1.0
    command_timeout_s: float = 5.0
    retry_base_s: float = 0.05
    retry_cap_s: float = 2.0

    def __post_init__(self) -> None:
        check_url(self.url, "policy store url")
        PolicyKeys.of(self.key_prefix, Partition("", ""))  # validates the prefix
        if self.history < 1:
            raise ValueError(f"history must be >= 1, got {self.history}")
        if not 0 < self.watch_block_s < self.command_timeout_s:
            raise ValueError("watch_block_s must be positive and below command_timeout_s")
        if not self.connect_timeout_s > 0:
            raise ValueError(f"connect_timeout_s must be > 0, got {self.connect_timeout_s}")
        if not 0 < self.retry_base_s <= self.retry_cap_s:
            raise ValueError("retry_base_s and retry_cap_s must satisfy 0 < retry_base_s <= retry_cap_s")

    def keys(self, edge_model_version: str, cohort: str) -> PolicyKeys:
        """The keys of one (edge model version, cohort); escaped so that no version or cohort can break out
        of the hash tag."""
        return PolicyKeys.of(self.key_prefix, Partition(edge_model_version, cohort))

    def stream_key(self, edge_model_version: str, cohort: str) -> str:
        """The stream of policies published for one (edge model version, cohort)."""
        return self.keys(edge_model_version, cohort).stream

    def versions_key(self, edge_model_version: str, cohort: str) -> str:
        """The hash of every stored version of one (edge model version, cohort), in the stream's slot."""
        return self.keys(edge_model_version, cohort).versions
