"""Probe+policy delivery time to every agent: not measured yet.

Signed probe delivery with the policy that names it is being built (branch ``probe-delivery``); until it is
merged nothing delivers a probe to a device, so there is nothing to time. :func:`probe_policy_delivery_s` is
the one place to fill: publish the round's probe and policy, start the agents' watchers, and return the
seconds until every agent applied both (or the reason it could not be measured).
"""

from __future__ import annotations

from typing import Any

NOT_YET = ("probe delivery to devices is not merged yet (branch probe-delivery builds signed probe delivery with "
           "the policy): nothing delivers a probe to an agent, so there is no time to measure")


def probe_policy_delivery_s(**_: Any) -> float | str:
    """Seconds from publishing a probe and its policy until every agent applied both; a string says why
    it was not measured."""
    return NOT_YET
