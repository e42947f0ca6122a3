"""edge_agent.config: flags over CONFROUTE_EDGE_* variables, for the settings that have both."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from edge_agent.config import AgentConfig, add_arguments, config_from


def parse(argv: Sequence[str], env: Mapping[str, str]) -> AgentConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser, env)
    return config_from(parser.parse_args(argv), env)


def test_cors_origins_come_from_repeated_flags_or_a_comma_separated_variable() -> None:
    env = {"CONFROUTE_EDGE_CORS_ORIGINS": "https://a.example, http://localhost:3000,"}
    assert parse([], {}).cors_origins == ()
    assert parse([], env).cors_origins == ("https://a.example", "http://localhost:3000")
    assert parse(["--cors-origin", "*"], env).cors_origins == ("*",)
    assert parse(["--cors-origin", "https://b.example", "--cors-origin", "https://c.example"], {}).cors_origins == (
        "https://b.example", "https://c.example")


def test_huge_pages_are_on_unless_a_flag_or_the_variable_turns_them_off() -> None:
    assert parse([], {}).huge_pages
    assert not parse(["--no-huge-pages"], {}).huge_pages
    assert not parse([], {"CONFROUTE_EDGE_HUGE_PAGES": "0"}).huge_pages
    assert parse([], {"CONFROUTE_EDGE_HUGE_PAGES": "1"}).huge_pages
