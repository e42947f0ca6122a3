"""The policy store: versioned routing policies per (edge model version, cohort), and their watchers."""

from cloud_service.policies.config import PolicyStoreConfig
from cloud_service.policies.redis_store import RedisPolicyStore

__all__ = ["PolicyStoreConfig", "RedisPolicyStore"]
