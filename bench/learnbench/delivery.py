"""Probe+policy delivery time to every agent: not measured yet.

Signed probe delivery with the policy that names it is built (docs/probe-delivery.md; timed end to end only
in ``tests/test_probe_delivery_loop.py``), but this benchmark runs the workers on Redis without a cloud
service or agents that watch it, so there is nothing here to time. :func:`probe_policy_delivery_s` is the one
place to fill: publish the round's probe and policy, start the agents' watchers, and return the seconds until
every agent applied both (or the reason it could not be measured).
"""

from __future__ import annotations

from typing import Any

NOT_YET = ("probe delivery is built (docs/probe-delivery.md) but this benchmark starts no cloud service and no "
           "watching agents, so it does not time it")


def probe_policy_delivery_s(**_: Any) -> float | str:
    """Seconds from publishing a probe and its policy until every agent applied both; a string says why
    it was not measured."""
    return NOT_YET
