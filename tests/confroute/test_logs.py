"""JSON-lines logging: every line every process writes in ``json`` mode parses as one JSON object.

The processes run from their real command lines, against dependencies that nobody listens for (so that
they log warnings and retries), and stop at SIGTERM or on their own.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from confroute.errors import InvalidInput
from confroute.logs import configure_logging, report_error

ROOT = Path(__file__).resolve().parents[2]
AWKWARD = 'policy "v7" applied: it\'s {"thresholds": [0.5]} \\ naïve\nsecond line \u2603'


def dead_address() -> str:
    """host:port on loopback where nobody listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def parsed(text: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    assert lines, "the process logged nothing"
    return [json.loads(line) for line in lines]


def test_a_message_with_quotes_newlines_and_unicode_is_one_json_line(root_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "DEBUG", stream)

    logging.getLogger("confroute.test").info("%s", AWKWARD)

    (entry,) = parsed(stream.getvalue())
    assert (entry["level"], entry["logger"], entry["message"]) == ("INFO", "confroute.test", AWKWARD)
    assert entry["time"].endswith("+00:00")


def test_an_exception_and_a_stack_are_fields_of_the_same_line(root_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    try:
        raise RuntimeError('bad "thing"')
    except RuntimeError:
        logging.getLogger("confroute.test").exception("round failed")
    logging.getLogger("confroute.test").warning("where am I", stack_info=True)

    failed, located = parsed(stream.getvalue())
    assert failed["message"] == "round failed"
    assert failed["exception"].startswith("Traceback") and 'RuntimeError: bad "thing"' in failed["exception"]
    assert "test_an_exception_and_a_stack_are_fields_of_the_same_line" in located["stack"]
    assert "exception" not in located


def test_an_unknown_log_format_is_invalid_input_naming_the_setting(root_logging: None) -> None:
    with pytest.raises(InvalidInput) as caught:
        configure_logging("yaml")
    assert caught.value.field == "log_format"


def run_until(command: Sequence[str], env: Mapping[str, str], *, needle: str | None, timeout_s: float = 60.0
              ) -> str:
    """Runs ``command``; once a stderr line contains ``needle`` sends SIGTERM (None: waits for the exit)."""
    process = subprocess.Popen([sys.executable, *command], cwd=ROOT, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        for line in process.stderr:
            lines.append(line)
            if needle is not None and needle in line:
                process.send_signal(signal.SIGTERM)
                break
            assert time.monotonic() < deadline, f"no {needle!r} in time: {lines}"
        rest, _ = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return "".join(lines) + (rest or "")


def test_the_edge_agent_logs_json_lines(tiny_bundle: Path, tmp_path: Path) -> None:
    command = ["-m", "edge_agent.cli", "ask", "hi", "--bundle", str(tiny_bundle), "--max-tokens", "2",
               "--state-dir", str(tmp_path), "--cloud", dead_address(), "--cloud-deadline", "0.5"]
    entries = parsed(run_until(command, {"CONFROUTE_EDGE_LOG_FORMAT": "json"}, needle=None))
    assert any("escalation failed" in e["message"] for e in entries)  # a message quoting a grpc error


CLOUD_ENV = {"CONFROUTE_CLOUD_LOG_FORMAT": "json", "CONFROUTE_CLOUD_REDIS_URL": f"redis://{dead_address()}/0"}


def test_the_cloud_service_logs_json_lines() -> None:
    command = ["-m", "cloud_service.cli", "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "",
               "--triton-url", dead_address()]
    entries = parsed(run_until(command, CLOUD_ENV, needle="backend not ready"))
    assert any(e["message"].startswith("cloud service listening") for e in entries)


def test_the_backpressure_controller_logs_json_lines() -> None:
    command = ["-m", "cloud_service.cli", "backpressure", "--triton-metrics-url", f"http://{dead_address()}/metrics",
               "--key", "v1/", "--metrics-listen", "127.0.0.1:0"]
    entries = parsed(run_until(command, CLOUD_ENV, needle="back-pressure controller"))
    assert any(e["logger"] == "cloud_service.policies.backpressure_command" for e in entries)


@pytest.mark.parametrize("worker", ["recalibrate", "judge"])
def test_the_workers_log_json_lines(worker: str) -> None:
    command = ["-m", "cloud_service.cli", worker, "--once", "--log-format", "json", "--triton-url", dead_address()]
    if worker == "recalibrate":
        command = command[:-2]
    entries = parsed(run_until(command, CLOUD_ENV, needle=None))  # Redis is down: it logs, then fails
    assert entries[0]["message"] == f"cloud-service {worker} starting"


def test_a_commands_last_error_follows_the_log_format(root_logging: None, capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    report_error("tool", InvalidInput("bad 'x'"))
    assert capsys.readouterr().err == "tool: error: bad 'x'\n"

    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    report_error("tool", InvalidInput("bad 'x'"))
    (entry,) = parsed(stream.getvalue())
    assert (entry["level"], entry["logger"], entry["message"]) == ("ERROR", "tool", "tool: error: bad 'x'")
