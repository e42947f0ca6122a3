"""One spelling per flag across ``cloud-service``'s commands, and ``--version`` on every entry point."""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable, Sequence

import pytest

from cloud_service.cli import _parser, main
from confroute.modelkit.cli import main as export_main
from confroute.probes.cli import main as probe_main
from confroute.version import version
from edge_agent.cli import build_parser
from edge_agent.cli import main as edge_main

# Each concept's one spelling, and the spellings it must not take.
OTHER_SPELLINGS = {
    "--max-in-flight": ("--max-inflight", "--max-concurrency", "--concurrency"),
    "--interval": ("--interval-s", "--every", "--period", "--poll-interval"),
    "--metrics-listen": ("--listen-metrics", "--metrics-port", "--metrics-addr"),
    "--listen": ("--bind", "--address", "--addr", "--host", "--port"),
}
# `cloud-service triton` starts tritonserver and passes it tritonserver's own flags (one host, three ports).
TRITONS_OWN = "cloud-service triton"
# `ca server-cert --host NAME` names the certificate's DNS names and addresses, not where anything listens.
NOT_AN_ADDRESS = {"cloud-service ca server-cert": {"--host"}}


def flags_by_command() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            else:
                found[path].update(action.option_strings)

    walk(_parser(), "cloud-service")
    walk(build_parser(), "edge-agent")
    return found


def test_no_command_spells_a_flag_another_way() -> None:
    for command, flags in flags_by_command().items():
        if command == TRITONS_OWN:
            continue
        for spelling, others in OTHER_SPELLINGS.items():
            assert not (flags - NOT_AN_ADDRESS.get(command, set())) & set(others), f"{command}: spell it {spelling}"
        assert not {f for f in flags if "inflight" in f}, f"{command}: in-flight is spelled in-flight"


def test_version_means_the_programs_version_only() -> None:
    commands = flags_by_command()
    assert "--version" in commands.pop("cloud-service") and "--version" in commands.pop("edge-agent")
    assert not [command for command, flags in commands.items() if "--version" in flags]


def test_the_service_and_the_judge_bound_what_is_in_flight_with_one_flag() -> None:
    commands = flags_by_command()
    assert {"--max-in-flight", "--listen", "--metrics-listen"} <= commands["cloud-service serve"]
    assert "--max-in-flight" in commands["cloud-service judge"]
    for worker in ("judge", "recalibrate", "backpressure", "outcomes tail"):
        assert "--interval" in commands[f"cloud-service {worker}"], worker


@pytest.mark.parametrize("entry_point", [main, edge_main, export_main, probe_main],
                         ids=["cloud-service", "edge-agent", "confroute-export", "confroute-probe"])
def test_every_entry_point_answers_version(entry_point: Callable[[Sequence[str]], int],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        entry_point(["--version"])
    assert exited.value.code == 0
    assert version() in capsys.readouterr().out


def test_the_edge_agent_listens_where_listen_says() -> None:
    commands = flags_by_command()
    for command in ("edge-agent serve", "edge-agent ask"):
        assert "--listen" in commands[command], command
