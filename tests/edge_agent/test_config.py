"""edge_agent.config: flags over CONFROUTE_EDGE_* variables over defaults, read by the shared builder."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from confroute.errors import InvalidInput
from confroute.settings import FALSE, TRUE
from edge_agent.config import AgentConfig, add_arguments, config_from


def parse(argv: Sequence[str], env: Mapping[str, str]) -> AgentConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from(parser.parse_args(argv), env)


CLOUD = {"CONFROUTE_EDGE_CLOUD": "cloud.example:443"}


def test_without_flags_or_variables_the_agent_runs_offline_on_the_defaults() -> None:
    config = parse([], {"CONFROUTE_CACHE_DIR": "/tmp/cache"})
    assert config.cloud is None
    assert (config.device, config.threads, config.cohort, config.http_port, config.log_format) == (
        "cpu", 2, "default", 8080, "text")
    assert config.state_dir == Path("/tmp/cache/edge")


def test_a_flag_wins_over_its_variable_which_wins_over_the_default() -> None:
    env = {**CLOUD, "CONFROUTE_EDGE_CLOUD_DEADLINE": "3.5", "CONFROUTE_EDGE_LISTEN": "0.0.0.0:9000",
           "CONFROUTE_EDGE_THREADS": "4"}
    config = parse(["--listen", "127.0.0.1:9100"], env)
    assert (config.http_host, config.http_port, config.threads) == ("127.0.0.1", 9100, 4)
    assert config.cloud is not None and config.cloud.deadline_s == 3.5
    assert config.cloud.target == "cloud.example:443"


@pytest.mark.parametrize("spelling", [*TRUE, *(s.upper() for s in TRUE), " Yes "])
def test_tls_is_on_for_every_true_spelling(spelling: str) -> None:
    config = parse([], {**CLOUD, "CONFROUTE_EDGE_TLS": spelling})
    assert config.cloud is not None and config.cloud.tls


@pytest.mark.parametrize("spelling", [*FALSE, *(s.title() for s in FALSE)])
def test_tls_is_off_for_every_false_spelling(spelling: str) -> None:
    config = parse([], {**CLOUD, "CONFROUTE_EDGE_TLS": spelling})
    assert config.cloud is not None and not config.cloud.tls


@pytest.mark.parametrize(
    ("env", "named"),
    [({"CONFROUTE_EDGE_TLS": "maybe"}, "CONFROUTE_EDGE_TLS"),
     ({"CONFROUTE_EDGE_NEVER_ESCALATE": ""}, "CONFROUTE_EDGE_NEVER_ESCALATE"),
     ({"CONFROUTE_EDGE_THREADS": "two"}, "CONFROUTE_EDGE_THREADS"),
     ({"CONFROUTE_EDGE_CLOUD_DEADLINE": "soon"}, "CONFROUTE_EDGE_CLOUD_DEADLINE"),
     ({"CONFROUTE_EDGE_LOG_FORMAT": "yaml"}, "CONFROUTE_EDGE_LOG_FORMAT")],
)
def test_a_bad_value_fails_naming_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidInput, match=named) as caught:
        parse([], {**CLOUD, **env})
    assert caught.value.field == named.removeprefix("CONFROUTE_EDGE_").lower()


def test_boolean_flags_have_a_negative_form_that_wins_over_the_variable() -> None:
    assert parse(["--never-escalate"], {}).never_escalate
    assert not parse(["--no-never-escalate"], {"CONFROUTE_EDGE_NEVER_ESCALATE": "yes"}).never_escalate
    config = parse(["--tls"], CLOUD)
    assert config.cloud is not None and config.cloud.tls


def test_the_token_comes_from_the_environment_only() -> None:
    config = parse([], {**CLOUD, "CONFROUTE_EDGE_TOKEN": "s3cret"})
    assert config.cloud is not None and config.cloud.token == "s3cret"
    with pytest.raises(SystemExit):
        parse(["--token", "s3cret"], CLOUD)


def test_cors_origins_come_from_repeated_flags_or_a_comma_separated_variable() -> None:
    env = {"CONFROUTE_EDGE_CORS_ORIGINS": "https://a.example, http://localhost:3000,"}
    assert parse([], {}).cors_origins == ()
    assert parse([], env).cors_origins == ("https://a.example", "http://localhost:3000")
    assert parse(["--cors-origin", "*"], env).cors_origins == ("*",)
    assert parse(["--cors-origin", "https://b.example", "--cors-origin", "https://c.example"], {}).cors_origins == (
        "https://b.example", "https://c.example")


def test_privacy_patterns_are_one_per_line_and_policy_keys_a_path_list() -> None:
    env = {"CONFROUTE_EDGE_PRIVACY_PATTERNS": "ssn,\\d+\n\npassword", "CONFROUTE_EDGE_POLICY_KEYS": os.pathsep.join(
        ["/keys/a.pub", "/keys/more"])}
    config = parse([], env)
    assert config.privacy_patterns == ("ssn,\\d+", "password")
    assert config.policy_keys == (Path("/keys/a.pub"), Path("/keys/more"))
    assert parse(["--policy-key", "/k.pub"], env).policy_keys == (Path("/k.pub"),)


def test_huge_pages_are_on_unless_a_flag_or_the_variable_turns_them_off() -> None:
    assert parse([], {}).huge_pages
    assert not parse(["--no-huge-pages"], {}).huge_pages
    assert not parse([], {"CONFROUTE_EDGE_HUGE_PAGES": "0"}).huge_pages
    assert not parse([], {"CONFROUTE_EDGE_HUGE_PAGES": "off"}).huge_pages
    assert parse([], {"CONFROUTE_EDGE_HUGE_PAGES": "1"}).huge_pages


def test_the_command_line_refuses_a_bad_variable_naming_it(capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent.cli import main

    monkeypatch.setenv("CONFROUTE_EDGE_TLS", "maybe")
    assert main(["ask", "hi"]) == 2
    assert "edge-agent: error: CONFROUTE_EDGE_TLS must be a boolean" in capsys.readouterr().err


@pytest.mark.parametrize("listen", ["8080", "localhost", "127.0.0.1:70000", ":8080", "127.0.0.1:http"])
def test_a_listen_address_that_is_not_host_port_is_refused_by_name(listen: str) -> None:
    with pytest.raises(InvalidInput, match="listen must be host:port"):
        parse(["--listen", listen], {})
