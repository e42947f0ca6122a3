"""The Redis key schema: a partition's tag round-trips through its one parser, every key of a partition
lands in one cluster slot whatever the version and cohort hold, and every Lua file compiles on a real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

import cloud_service.store
from cloud_service.store.schema import OutcomeKeys, Partition, PartitionKeys, PolicyKeys, hash_tag
from cloud_service.store.scripts import NAMES, script
from tests.cloud_service.redis_server import RedisServer

names = st.text(st.characters(codec="utf-8"), max_size=20)
partitions = st.builds(Partition, names, names)


def every_key(keys: PartitionKeys) -> list[str]:
    return [keys.stream, keys.seen("q-1", "device"), keys.seen("q-1", "service"), keys.stats("post"),
            keys.histogram("post", "pre", "w:c"), keys.stats_meta("pre"), keys.labelled("q-1"), keys.folded("q-1"),
            keys.arm("p-{7}|x"), keys.labels, keys.recalibrations]


@given(partitions)
def test_a_partition_tag_round_trips_through_its_parser(partition: Partition) -> None:
    assert Partition.from_tag(partition.tag) == partition
    assert "{" not in partition.tag and "}" not in partition.tag
    assert partition.tag.count("|") == 1


@given(partitions)
def test_every_key_of_a_partition_hashes_to_the_partition_tag(partition: Partition) -> None:
    outcome_keys = OutcomeKeys("confroute:outcomes").partition(partition)
    policy_keys = PolicyKeys.of("confroute:policy", partition)

    for key in [*every_key(outcome_keys), policy_keys.stream, policy_keys.versions]:
        assert hash_tag(key) == partition.tag
    assert OutcomeKeys("confroute:outcomes").partition_of_tag(partition.tag) == outcome_keys


@given(partitions, partitions)
def test_distinct_partitions_get_distinct_keys(one: Partition, other: Partition) -> None:
    keys = OutcomeKeys("confroute:outcomes")
    if one != other:
        assert keys.partition(one).stream != keys.partition(other).stream
        assert PolicyKeys.of("p", one).stream != PolicyKeys.of("p", other).stream


def test_a_prefix_with_its_own_tag_puts_every_partition_in_one_slot() -> None:
    keys = OutcomeKeys("confroute:{outcomes}")
    beta, gamma = keys.partition(Partition("2026.01", "beta")), keys.partition(Partition("2026.01", "gamma"))

    slots = {key_slot(key.encode()) for key in every_key(beta) + every_key(gamma)}

    assert slots == {key_slot(b"outcomes")}
    assert beta.stream == gamma.stream == keys.stream
    assert keys.partition_of_tag(beta.tag) == beta


@pytest.mark.parametrize("prefix", ["confroute:{outcomes", "confroute:}x{", "confroute:{}"])
def test_an_outcome_prefix_with_a_broken_tag_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="one hash tag"):
        OutcomeKeys(prefix)


def test_a_policy_prefix_with_braces_and_a_tag_without_a_separator_are_refused() -> None:
    with pytest.raises(ValueError, match="braces"):
        PolicyKeys.of("confroute:{policy}", Partition("1", "beta"))
    with pytest.raises(ValueError, match="partition tag"):
        Partition.from_tag("no-separator")


def test_every_lua_file_is_a_script_or_a_library_and_compiles(redis_server: RedisServer) -> None:
    folder = Path(cloud_service.store.__file__).parent / "lua"
    files = {path.stem for path in folder.glob("*.lua")}

    assert set(NAMES) <= files
    assert files - set(NAMES) == {"fold"}
    with redis.Redis.from_url(redis_server.url) as client:
        for name in NAMES:
            assert client.script_load(script(name).source) == script(name).sha
