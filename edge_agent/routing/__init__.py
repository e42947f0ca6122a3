"""Routing on the device: the privacy veto. The routing rule itself (scores, ``decide``, the built-in
policy) is the shared contract ``confroute.routing``, which the cloud's statistics read too."""

from edge_agent.routing.privacy import PrivacyRules

__all__ = ["PrivacyRules"]
