"""The Redis URL picks the deployment: ``redis://`` one server, ``redis+cluster://`` a Redis Cluster (no servers)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from cloud_service.config import ServiceConfig
from cloud_service.redis_client import (
    ClusterUrl,
    RedisClient,
    check_url,
    connect,
    parse_cluster_url,
    redacted,
)
from confroute.errors import InvalidInput


def test_a_cluster_url_lists_its_startup_nodes_with_the_default_port_where_none_is_given() -> None:
    parsed = parse_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002")

    assert parsed == ClusterUrl(nodes=(("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002)))


def test_a_cluster_url_carries_credentials_and_tls() -> None:
    parsed = parse_cluster_url("rediss+cluster://app:p%40ss@cache.example:6380/0")

    assert parsed == ClusterUrl(nodes=(("cache.example", 6380),), username="app", password="p@ss", tls=True)


def test_a_password_without_a_user_is_the_default_users() -> None:
    assert parse_cluster_url("redis+cluster://:secret@h:7000").username is None
    assert parse_cluster_url("redis+cluster://:secret@h:7000").password == "secret"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+cluster://h:7000/1", "database 0 only"),
        ("redis+cluster://h:7000?ssl_cert_reqs=none", "no query"),
        ("redis+cluster://", "host"),
        ("redis+cluster://h:7000,,h2:7001", "host"),
        ("redis+cluster://h:port", "Port"),
        ("redis+cluster://h:70000", "Port"),
    ],
)
def test_a_malformed_cluster_url_is_refused_with_its_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_cluster_url(url)
    with pytest.raises(ValueError, match=r"outcome log url must look like .*redis\+cluster://"):
        check_url(url, "outcome log url")


@pytest.mark.parametrize(
    "url",
    ["redis://h:6379/0", "rediss://u:p@h", "unix:///run/redis.sock", "redis+cluster://a:1,b:2", "rediss+cluster://a"],
)
def test_every_supported_form_passes_the_check(url: str) -> None:
    check_url(url, "policy store url")


def test_a_cluster_urls_password_is_redacted() -> None:
    assert redacted("redis+cluster://app:secret@a:7000,b:7001") == "redis+cluster://app:***@a:7000,b:7001"


def build(url: str) -> RedisClient:
    """The client ``connect`` builds, closed again (nothing connects before the first command)."""
    client = connect(url, connect_timeout_s=1.0, command_timeout_s=2.0)
    asyncio.run(client.aclose())
    return client


def test_a_cluster_url_gets_a_cluster_client_with_every_startup_node() -> None:
    client = build("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")

    assert isinstance(client, RedisCluster)
    assert sorted(node.name for node in client.startup_nodes) == ["127.0.0.1:7000", "127.0.0.1:7001"]


def test_a_plain_url_gets_a_single_server_client() -> None:
    assert type(build("redis://127.0.0.1:6379/0")) is Redis


def test_the_service_accepts_a_cluster_url_and_still_refuses_other_schemes() -> None:
    assert ServiceConfig(redis_url="redis+cluster://10.0.0.1:7000").redis_url == "redis+cluster://10.0.0.1:7000"
    with pytest.raises(InvalidInput, match="redis_url"):
        ServiceConfig(redis_url="http://10.0.0.1:7000")
