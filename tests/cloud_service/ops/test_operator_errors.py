"""The operator commands that read Redis end with one clear line and exit status 1 when Redis cannot be
reached or refuses the credentials (``cloud-service status`` reaches the service: test_status_command.py)."""

from __future__ import annotations

import pytest

from cloud_service.cli import main
from tests.cloud_service.redis_server import RedisServer, free_port

pytestmark = pytest.mark.timeout(60)
COMMANDS = [["devices", "list"], ["devices", "show", "dev-1"], ["outcomes", "tail", "--once"],
            ["policy", "show", "--edge-model-version", "2026.01", "--cohort", "beta"],
            ["policy", "history", "--edge-model-version", "2026.01", "--cohort", "beta"],
            ["recalibrate", "--dry-run"]]
IDS = [" ".join(command[:2]) for command in COMMANDS]


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_an_unreachable_redis_is_one_line_and_status_1(command: list[str], capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert main([*command, "--redis-url", url]) == 1
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert line.startswith("cloud-service: error: Redis failed") and "connecting to 127.0.0.1" in line


def test_credentials_redis_refuses_are_one_line_and_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    with RedisServer(password="right-one") as server:
        wrong = server.url.replace("right-one", "wrong-one")
        for command in COMMANDS:
            assert main([*command, "--redis-url", wrong]) == 1, command
            errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
            assert len(errors) == 1 and errors[0].startswith("cloud-service: error: Redis failed"), errors
            assert "password" in errors[0].lower() or "auth" in errors[0].lower(), errors[0]
            assert "wrong-one" not in errors[0]  # the secret is not echoed
