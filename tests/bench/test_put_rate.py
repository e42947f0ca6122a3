"""The outbox queue's write-throughput probe (``bench.edgebench.put_rate``) runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.edgebench.put_rate import measure_put_rate


def test_the_put_rate_probe_times_durable_puts_into_a_fresh_file(tmp_path: Path) -> None:
    rate = measure_put_rate(tmp_path / "bench.sqlite", puts=50, synchronous="NORMAL")

    assert rate.puts == 50 and rate.seconds > 0 and rate.per_s > 0


def test_the_probe_refuses_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "bench.sqlite").touch()
    with pytest.raises(FileExistsError):
        measure_put_rate(tmp_path / "bench.sqlite", puts=1)
