"""Every entry point answers ``--version`` with its name and the installed version."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from cloud_service.cli import main as cloud_service
from confroute.modelkit.cli import main as confroute_export
from confroute.probes.cli import main as confroute_probe
from confroute.version import version
from edge_agent.cli import main as edge_agent

Main = Callable[[Sequence[str] | None], object]


@pytest.mark.parametrize(("main", "name"), [(cloud_service, "cloud-service"), (edge_agent, "edge-agent"),
                                            (confroute_export, "confroute-export"),
                                            (confroute_probe, "confroute-probe")])
def test_every_entry_point_prints_its_version(main: Main, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == f"{name} {version()}\n"
    assert version() != "0+unknown"
