"""The fleet at a glance from device records: online, ages, versions, devices behind their rollout."""

from __future__ import annotations

from cloud_service.ops.devices import DeviceRecord
from cloud_service.ops.fleet_view import age_bucket, bounded, select, summarize

NOW = 1_000_000.0


def device(name: str, ago_s: float, policy: str = "p-2", probe: str = "", cohort: str = "beta") -> DeviceRecord:
    return DeviceRecord(name, cohort, "b1", policy, probe, NOW - ago_s, "watch")


def test_devices_are_counted_by_age_and_online() -> None:
    summary = summarize([device("a", 10), device("b", 600), device("c", 7200), device("d", 90_000)], NOW)

    assert summary.devices == 4 and summary.online == 1
    assert summary.by_age == {"<5m": 1, "5m-1h": 1, "1h-24h": 1, ">24h": 1}


def test_versions_are_counted_over_devices_seen_in_a_day() -> None:
    records = [device("a", 10, probe="pr1"), device("b", 20, "p-1"), device("c", 90_000, "p-0")]
    summary = summarize(records, NOW)

    assert summary.by_policy == {("b1", "beta", "p-2"): 1, ("b1", "beta", "p-1"): 1}
    assert summary.by_probe == {("b1", "beta", "pr1"): 1, ("b1", "beta", "unreported"): 1}


def test_a_device_on_a_version_its_rollout_no_longer_serves_is_behind() -> None:
    records = [device("a", 10, "p-2"), device("b", 20, "p-1"), device("c", 30, "p-3"), device("d", 30, "")]
    summary = summarize(records, NOW, {("b1", "beta"): frozenset({"p-2", "p-3"})})

    assert summary.behind == {("b1", "beta"): 1}
    assert summary.to_json()["behind_policy"] == [{"edge_model_version": "b1", "cohort": "beta", "devices": 1}]


def test_filters_combine_and_the_most_recently_seen_come_first() -> None:
    records = [device("a", 10), device("b", 5, cohort="gamma"), device("c", 4000), device("d", 1)]

    assert [r.device_id for r in select(records, NOW, cohort="beta")] == ["d", "a", "c"]
    assert [r.device_id for r in select(records, NOW, stale_s=3600)] == ["c"]
    assert select(records, NOW, policy_version="p-9") == []


def test_bounded_keeps_the_largest_label_sets_and_folds_the_rest_into_other() -> None:
    counts: dict[tuple[str, ...], int] = {("v1",): 5, ("v2",): 3, ("v3",): 1, ("v4",): 1}
    assert bounded(counts, 2) == {("v1",): 5, ("v2",): 3, ("other",): 2}
    assert bounded(counts, 10) == counts


def test_age_buckets() -> None:
    assert [age_bucket(s) for s in (0, 299, 300, 3599, 86_399, 86_400)] == \
        ["<5m", "<5m", "5m-1h", "5m-1h", "1h-24h", ">24h"]
