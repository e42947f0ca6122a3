"""The policy store's settings, and the Redis keys they imply."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from cloud_service.redis_client import check_url


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
        if "{" in self.key_prefix or "}" in self.key_prefix:
            raise ValueError(f"key_prefix must not contain braces (keys bring their own hash tag): {self.key_prefix!r}")
        if self.history < 1:
            raise ValueError(f"history must be >= 1, got {self.history}")
        if not 0 < self.watch_block_s < self.command_timeout_s:
            raise ValueError("watch_block_s must be positive and below command_timeout_s")
        if not self.connect_timeout_s > 0:
            raise ValueError(f"connect_timeout_s must be > 0, got {self.connect_timeout_s}")
        if not 0 < self.retry_base_s <= self.retry_cap_s:
            raise ValueError("retry_base_s and retry_cap_s must satisfy 0 < retry_base_s <= retry_cap_s")

    def stream_key(self, edge_model_version: str, cohort: str) -> str:
        """The stream of policies published for one (edge model version, cohort); escaped so that no
        version or cohort can break out of the hash tag."""
        return f"{self._tagged(edge_model_version, cohort)}:policies"

    def versions_key(self, edge_model_version: str, cohort: str) -> str:
        """The hash of every stored version of one (edge model version, cohort), in the stream's slot."""
        return f"{self._tagged(edge_model_version, cohort)}:versions"

    def _tagged(self, edge_model_version: str, cohort: str) -> str:
        tag = f"{quote(edge_model_version, safe='')}|{quote(cohort, safe='')}"
        return f"{self.key_prefix}:{{{tag}}}"
