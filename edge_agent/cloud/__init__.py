"""The device's side of the cloud: escalations (with deadline, retries, breaker, TLS and credentials)
and the routing policy (kept, saved, validated and watched).

Nothing here imports ``cloud_service``: the two sides share only ``confroute``.
"""

from edge_agent.cloud.breaker import BreakerSettings, BreakerState, CircuitBreaker
from edge_agent.cloud.channel import call_metadata, open_channel
from edge_agent.cloud.client import EscalationClient
from edge_agent.cloud.config import CloudConfig
from edge_agent.cloud.policy import PolicyKeeper, SignatureCheck, Verdict, accept_unsigned, signature_check
from edge_agent.cloud.watcher import PolicyWatcher

__all__ = [
    "BreakerSettings",
    "BreakerState",
    "CircuitBreaker",
    "CloudConfig",
    "EscalationClient",
    "PolicyKeeper",
    "PolicyWatcher",
    "SignatureCheck",
    "Verdict",
    "accept_unsigned",
    "call_metadata",
    "open_channel",
    "signature_check",
]
