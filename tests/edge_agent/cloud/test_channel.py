"""What every call to the cloud carries."""

from __future__ import annotations

from edge_agent.cloud import CloudConfig, call_metadata


def test_a_call_carries_the_token_and_the_probe_version_when_known() -> None:
    config = CloudConfig(target="127.0.0.1:1", token="t0k3n", probe_version="0123456789ab")

    assert call_metadata(config) == (("authorization", "Bearer t0k3n"), ("confroute-probe-version", "0123456789ab"))


def test_a_call_carries_nothing_without_token_or_probe_version() -> None:
    assert call_metadata(CloudConfig(target="127.0.0.1:1")) == ()


def test_the_probe_version_stays_out_of_repr_only_the_token_is_secret() -> None:
    config = CloudConfig(target="127.0.0.1:1", token="t0k3n", probe_version="0123456789ab")

    assert "t0k3n" not in repr(config) and "0123456789ab" in repr(config)
