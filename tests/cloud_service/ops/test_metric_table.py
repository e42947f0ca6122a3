"""docs/monitoring.md's table is the one the instruments generate: every series, its type, unit, labels."""

from __future__ import annotations

from pathlib import Path

from cloud_service.metrics import create_metrics
from cloud_service.ops.metric_table import END, START, markdown, rows, unit_of

PAGE = Path(__file__).resolve().parents[3] / "docs" / "monitoring.md"


def test_the_page_holds_the_table_the_code_generates() -> None:
    text = PAGE.read_text()
    documented = text[text.index(START): text.index(END) + len(END)]

    assert documented == markdown(rows()), "regenerate: python -m cloud_service.ops.metric_table"


def test_every_series_is_named_by_prometheus_conventions() -> None:
    for row in rows():
        assert row.name.startswith("confroute_")
        assert row.name.endswith("_total") == (row.kind == "counter"), row.name
        assert row.meaning and row.unit


def test_units_come_from_the_name() -> None:
    assert unit_of("confroute_triton_queue_seconds", "histogram") == "s"
    assert unit_of("confroute_worker_last_success_timestamp_seconds", "gauge") == "Unix time, s"
    assert unit_of("confroute_policy_estimated_risk", "gauge") == "ratio 0..1"


def test_every_service_series_in_the_table_is_in_the_service_registry() -> None:
    metrics = create_metrics()
    metrics.watch_outcome_log(type("Log", (), {"stats": type("S", (), {"buffered": 0, "dropped": 0, "written": 0,
                                                                       "duplicates": 0, "write_errors": 0})})())
    names = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    names |= {family.name + ("_total" if family.type == "counter" else "") for family in metrics.registry.collect()}
    service_rows = [row for row in rows() if row.process in ("service", "backpressure")]

    assert {row.name for row in service_rows} <= names
