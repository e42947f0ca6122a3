"""The Redis keys of fleet identity, in one place.

Every key carries the one hash tag ``{identity}``, so that enrolment (record, token index, member set,
revocation feed) is one MULTI on one Redis Cluster node. Ids and token hashes are restricted to
``[A-Za-z0-9._-]`` by their producers, so no key can break out of its place.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "confroute:{identity}"


@dataclass(frozen=True)
class IdentityKeys:
    """Key names under one prefix (tests use their own prefix to share a Redis)."""

    prefix: str = DEFAULT_PREFIX

    def principal(self, principal_id: str) -> str:
        """A principal's record (JSON string)."""
        return f"{self.prefix}:principal:{principal_id}"

    def token(self, token_hash: str) -> str:
        """A bearer token's keyed hash -> the id of the principal it belongs to."""
        return f"{self.prefix}:token:{token_hash}"

    @property
    def members(self) -> str:
        """The set of every enrolled principal's id."""
        return f"{self.prefix}:members"

    @property
    def revocations(self) -> str:
        """Sorted set: principal id -> milliseconds of its latest revocation or rotation (caches follow it)."""
        return f"{self.prefix}:revocations"

    def rate(self, principal_id: str, bucket: str) -> str:
        """A principal's token bucket for one kind of call (hash: tokens, at_ms)."""
        return f"{self.prefix}:rate:{principal_id}:{bucket}"
