"""cloud_service.worker_command: what recalibrate, judge and backpressure share."""

from __future__ import annotations

import argparse
import socket

import pytest

from cloud_service.calibration import command as recalibrate
from cloud_service.calibration.config import RecalibrationConfig
from cloud_service.judge import command as judge
from cloud_service.judge.config import JudgeConfig
from cloud_service.worker_command import config_from_args


def parsed(add_arguments: object, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)  # type: ignore[operator]
    return parser.parse_args(argv)


def test_a_workers_config_comes_from_the_flags_named_like_its_fields() -> None:
    args = parsed(recalibrate.add_arguments, "--target", "rate", "--target-rate", "0.3", "--consumer", "w-7")
    config = config_from_args(RecalibrationConfig, args)
    assert (config.target, config.target_rate, config.consumer) == ("rate", 0.3, "w-7")
    assert config.group == RecalibrationConfig().group  # no flag: the default


def test_without_a_consumer_flag_the_consumer_is_unique_to_the_process() -> None:
    config = config_from_args(JudgeConfig, parsed(judge.add_arguments, "--share", "0.5"))
    assert config.share == 0.5
    assert config.consumer.startswith(socket.gethostname() + "-")


@pytest.mark.parametrize("add_arguments", [recalibrate.add_arguments, judge.add_arguments])
def test_every_worker_takes_the_service_logging_flags(add_arguments: object) -> None:
    args = parsed(add_arguments, "--log-format", "json", "--log-level", "DEBUG", "--redis-url", "redis://h:1/0")
    assert (args.log_format, args.log_level, args.redis_url) == ("json", "DEBUG", "redis://h:1/0")
