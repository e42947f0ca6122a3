"""A limit on floods of invalid credentials: per peer address, in the process, before any hashing.

Each unknown or malformed bearer token a peer presents spends one token of its bucket (``burst``, refilled
at ``per_s``). While a peer's bucket is empty, a credential the authenticator has not verified recently is
refused at once, RESOURCE_EXHAUSTED with a retry delay (:class:`~confroute.errors.CredentialFlood`),
without an HMAC or a Redis read. Tokens the authenticator verified recently (``known_ttl_s``, 10 min) are
exempt, so a device goes on being served next to a flood from its own address. The address is the peer's
host (its port dropped): devices behind one NAT share a bucket, which is why it counts failures only. The
table holds at most :data:`MAX_PEERS` addresses (cleared beyond, as the credential caches are). Settings:
:class:`~.authenticator.AuthSettings`, from the service's ``invalid_credential_burst`` (20) and
``invalid_credentials_per_s`` (2).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confroute.errors import CredentialFlood

MAX_PEERS = 100_000


class FailureBudget:
    """Per-peer token buckets of invalid credentials: ``burst`` at once, then ``per_s``."""

    def __init__(self, burst: float, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._burst = burst
        self._per_s = per_s
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # peer -> (tokens, when)

    def check(self, peer: str) -> None:
        """CredentialFlood while ``peer`` has spent its budget."""
        tokens = self._tokens(peer)
        if tokens < 1.0:
            raise CredentialFlood(f"too many invalid credentials from {peer}",
                                  retry_after_s=(1.0 - tokens) / self._per_s)

    def charge(self, peer: str) -> None:
        """One invalid credential from ``peer``."""
        tokens = self._tokens(peer)
        if len(self._buckets) >= MAX_PEERS and peer not in self._buckets:
            self._buckets.clear()
        self._buckets[peer] = (tokens - 1.0, self._clock())

    def _tokens(self, peer: str) -> float:
        held = self._buckets.get(peer)
        if held is None:
            return self._burst
        tokens, when = held
        return min(self._burst, tokens + (self._clock() - when) * self._per_s)


def peer_host(peer: str) -> str:
    """``ipv4:10.0.0.5:51234`` -> ``ipv4:10.0.0.5`` (``ipv6:[::1]:5`` -> ``ipv6:[::1]``); others unchanged."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.rpartition(":")[0]
    return peer
