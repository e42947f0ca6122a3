"""The agent: one query from prompt to answer, routed between the edge model and the cloud."""

from edge_agent.core.agent import AgentIdentity, EdgeAgent

__all__ = ["AgentIdentity", "EdgeAgent"]
