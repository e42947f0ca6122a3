"""A cloud worker command in a subprocess, with its ``/metrics`` on a port it picked itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]
_METRICS_LINE = re.compile(r"metrics on http://[^:]+:(\d+)/metrics")


@contextmanager
def worker_process(arguments: Sequence[str], timeout_s: float = 30.0) -> Iterator[int]:
    """Runs ``cloud-service ARGUMENTS --metrics-listen 127.0.0.1:0``; yields the metrics port."""
    command = [sys.executable, "-m", "cloud_service.cli", *arguments, "--metrics-listen", "127.0.0.1:0"]
    process = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        lines: list[str] = []
        deadline = time.monotonic() + timeout_s
        for line in process.stderr:
            lines.append(line)
            match = _METRICS_LINE.search(line)
            if match:
                yield int(match.group(1))
                return
            assert time.monotonic() < deadline, f"no metrics line in time: {lines}"
        raise AssertionError(f"the worker exited: {lines}")
    finally:
        process.terminate()
        process.communicate(timeout=10)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on ``/metrics``: (name, sorted labels) -> value."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def wait_for_sample(port: int, name: str, labels: dict[str, str], condition: Callable[[float], bool],
                    timeout_s: float = 30.0) -> float:
    """Scrapes until the sample exists and meets ``condition``; returns its value."""
    key = (name, tuple(sorted(labels.items())))
    deadline = time.monotonic() + timeout_s
    while True:
        value = scrape(port).get(key)
        if value is not None and condition(value):
            return value
        assert time.monotonic() < deadline, f"{name}{labels} never met the condition (last {value})"
        time.sleep(0.1)
