"""The committed gRPC stubs are exactly what proto/ generates, import as confroute.v1, and the
.proto files pass buf's STANDARD lint."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _buf() -> str | None:
    """buf from the running venv (buf-bin), else from PATH."""
    beside_python = Path(sys.executable).parent / "buf"
    return str(beside_python) if beside_python.exists() else shutil.which("buf")


def test_committed_stubs_match_a_fresh_generation() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(_buf() is None, reason="buf is not installed (pip install buf-bin)")
def test_protos_pass_buf_standard_lint() -> None:
    result = subprocess.run(
        [str(_buf()), "lint"], cwd=ROOT / "proto", capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["common", "escalation", "outcomes", "fleet", "bundle"])
def test_each_stub_imports_under_its_proto_path(name: str) -> None:
    module = importlib.import_module(f"confroute.v1.{name}_pb2")
    assert module.DESCRIPTOR.name == f"confroute/v1/{name}.proto"
    assert module.DESCRIPTOR.package == "confroute.v1"
    importlib.import_module(f"confroute.v1.{name}_pb2_grpc")


def _method(module: str, service: str, rpc: str) -> tuple[bool, bool]:
    descriptor = importlib.import_module(f"confroute.v1.{module}_pb2").DESCRIPTOR
    method = descriptor.services_by_name[service].methods_by_name[rpc]
    return method.client_streaming, method.server_streaming


@pytest.mark.parametrize(
    ("module", "service", "rpc", "client_streams", "server_streams"),
    [
        ("escalation", "EscalationService", "Escalate", False, False),
        ("escalation", "EscalationService", "EscalateStream", False, True),
        ("outcomes", "OutcomesService", "UploadOutcomes", True, True),
        ("fleet", "FleetService", "GetPolicy", False, False),
        ("fleet", "FleetService", "WatchPolicy", False, True),
        ("bundle", "BundleService", "GetBundleRelease", False, False),
        ("bundle", "BundleService", "ReadBundleFile", False, True),
    ],
)
def test_each_rpc_streams_the_way_the_contract_says(
    module: str, service: str, rpc: str, client_streams: bool, server_streams: bool
) -> None:
    assert _method(module, service, rpc) == (client_streams, server_streams)


#: The commit that first published confroute.v1: every later change must stay wire- and source-compatible
#: with it (a breaking change belongs in confroute.v2).
V1_BASELINE = "ab361330c24321b1965f1368f5650201a1257e77"


@pytest.mark.skipif(_buf() is None, reason="buf is not installed (pip install buf-bin)")
def test_protos_stay_compatible_with_the_published_v1() -> None:
    known = subprocess.run(["git", "cat-file", "-e", f"{V1_BASELINE}^{{commit}}"], cwd=ROOT, capture_output=True,
                           check=False)
    if known.returncode != 0:
        pytest.skip("the v1 baseline commit is not in this checkout (not a git clone, or a shallow one)")
    against = f"../.git#ref={V1_BASELINE},subdir=proto"
    result = subprocess.run(
        [str(_buf()), "breaking", "--against", against], cwd=ROOT / "proto", capture_output=True, text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
