"""confroute.settings: one boolean parser and one flag/variable builder for both sides."""

from __future__ import annotations

import argparse
import os

import pytest

from cloud_service.config import add_arguments as cloud_arguments
from cloud_service.config import config_from as cloud_config
from confroute.errors import InvalidInput
from confroute.settings import FALSE, TRUE, Setting, add_flags, parse_bool, resolve
from edge_agent.config import add_arguments as edge_arguments
from edge_agent.config import config_from as edge_config


@pytest.mark.parametrize("spelling", [*TRUE, *(s.upper() for s in TRUE), " on\n"])
def test_every_true_spelling_reads_as_true(spelling: str) -> None:
    assert parse_bool(spelling, "X") is True


@pytest.mark.parametrize("spelling", [*FALSE, *(s.capitalize() for s in FALSE)])
def test_every_false_spelling_reads_as_false(spelling: str) -> None:
    assert parse_bool(spelling, "X") is False


@pytest.mark.parametrize("spelling", ["", "2", "y", "n", "enabled", "truee", "-1"])
def test_anything_else_is_invalid_input_naming_the_source(spelling: str) -> None:
    with pytest.raises(InvalidInput, match="CONFROUTE_EDGE_TLS must be a boolean") as caught:
        parse_bool(spelling, "CONFROUTE_EDGE_TLS", "tls")
    assert caught.value.field == "tls"


@pytest.mark.parametrize("spelling", [*TRUE, *FALSE])
def test_the_edge_agent_and_the_cloud_service_read_a_boolean_the_same_way(spelling: str) -> None:
    edge = argparse.ArgumentParser()
    edge_arguments(edge)
    cloud = argparse.ArgumentParser()
    cloud_arguments(cloud)
    env = {"CONFROUTE_EDGE_NEVER_ESCALATE": spelling, "CONFROUTE_CLOUD_RETAIN_TEXT": spelling}

    never_escalate = edge_config(edge.parse_args([]), env).never_escalate
    retain_text = cloud_config(cloud.parse_args([]), env).retain_text

    assert never_escalate == retain_text == (spelling in TRUE)


def test_a_bad_flag_value_is_named_by_its_flag() -> None:
    parser = argparse.ArgumentParser()
    settings = (Setting("rate", "float", 1.0),)
    add_flags(parser, settings, "P_")
    with pytest.raises(InvalidInput, match="--rate must be a number") as caught:
        resolve(settings, parser.parse_args(["--rate", "fast"]), {}, "P_")
    assert caught.value.field == "rate"


def test_a_setting_without_a_flag_is_read_from_its_variable_only() -> None:
    parser = argparse.ArgumentParser()
    settings = (Setting("secret", flag=None), Setting("paths", "path", (), separator=os.pathsep))
    add_flags(parser, settings, "P_")
    values = resolve(settings, parser.parse_args([]), {"P_SECRET": "s", "P_PATHS": f"/a{os.pathsep}/b"}, "P_")
    assert values["secret"] == "s"
    assert [str(p) for p in values["paths"]] == ["/a", "/b"]
