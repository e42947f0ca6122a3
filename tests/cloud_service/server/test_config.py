"""ServiceConfig: flags over CONFROUTE_CLOUD_* variables over defaults, validated once."""

from __future__ import annotations

import argparse

import pytest

from cloud_service.config import ServiceConfig, add_arguments, config_from
from confroute.errors import InvalidInput
from confroute.settings import split_address


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_listen_on_loopback() -> None:
    config = config_from(parse(), {})

    assert config == ServiceConfig()
    assert config.listen == "127.0.0.1:50051"


def test_a_flag_wins_over_the_environment_which_wins_over_the_default() -> None:
    environ = {"CONFROUTE_CLOUD_MAX_INFLIGHT": "8", "CONFROUTE_CLOUD_TRITON_MODEL": "vllm_model"}

    config = config_from(parse("--max-in-flight", "3", "--listen", "127.0.0.1:0"), environ)

    assert (config.max_inflight, config.triton_model, config.listen) == (3, "vllm_model", "127.0.0.1:0")


def test_booleans_come_from_flags_or_words() -> None:
    assert config_from(parse("--retain-text"), {}).retain_text is True
    assert config_from(parse(), {"CONFROUTE_CLOUD_RETAIN_TEXT": "yes"}).retain_text is True
    assert config_from(parse("--no-retain-text"), {"CONFROUTE_CLOUD_RETAIN_TEXT": "1"}).retain_text is False


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({"CONFROUTE_CLOUD_MAX_INFLIGHT": "many"}, "max_inflight"),
        ({"CONFROUTE_CLOUD_MAX_INFLIGHT": "0"}, "max_inflight"),
        ({"CONFROUTE_CLOUD_MAX_DEADLINE_S": "nan"}, "max_deadline_s"),
        ({"CONFROUTE_CLOUD_LISTEN": "50051"}, "listen"),
        ({"CONFROUTE_CLOUD_REDIS_URL": "http://x"}, "redis_url"),
        ({"CONFROUTE_CLOUD_REDIS_URL": "redis://host:port"}, "redis_url"),
        ({"CONFROUTE_CLOUD_REDIS_URL": "redis://host:6379/zero"}, "redis_url"),
        ({"CONFROUTE_CLOUD_PROMPT_FORMAT": "llama"}, "prompt_format"),
        ({"CONFROUTE_CLOUD_RETAIN_TEXT": "maybe"}, "retain_text"),
        ({"CONFROUTE_CLOUD_RATE_LEASE_S": "-1"}, "rate_lease_s"),
        ({"CONFROUTE_CLOUD_RATE_LEASE_S": "inf"}, "rate_lease_s"),
    ],
)
def test_a_bad_value_is_invalid_input_naming_the_field(environ: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        config_from(parse(), environ)

    assert caught.value.field == field


def test_the_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        ServiceConfig().max_inflight = 2  # type: ignore[misc]


def test_addresses_split_into_host_and_port() -> None:
    assert split_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert split_address("[::1]:50051") == ("::1", 50051)
