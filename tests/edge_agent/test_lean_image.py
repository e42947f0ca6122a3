"""The device image stays lean: the edge agent's entry points load no cloud or export code, and the package
holds no orchestration of other processes (the demo that starts both sides lives in the top-level ``demo``)."""

from __future__ import annotations

import ast
from pathlib import Path

import edge_agent
from tests.imports import loaded

FORBIDDEN = ("cloud_service", "redis", "tritonclient", "torch", "transformers", "onnx", "gguf")
NO_ORCHESTRATION = (*FORBIDDEN, "subprocess", "multiprocessing", "demo", "bench")
# The one process a device module may start: Jetson's own telemetry tool (tegrastats), read line by line.
BOARD_TOOLS = {"platform/tegrastats.py: subprocess"}


def test_the_edge_agent_entry_point_loads_no_cloud_or_export_modules() -> None:
    assert loaded(["edge_agent.cli", "edge_agent.model", "edge_agent.app", "confroute.engine"], FORBIDDEN) == []


def test_no_edge_agent_module_imports_process_orchestration_or_cloud_code() -> None:
    root = Path(edge_agent.__file__).parent
    offenders = {
        f"{path.relative_to(root)}: {name}"
        for path in root.rglob("*.py")
        for name in _imported_roots(path)
        if name in NO_ORCHESTRATION
    }
    assert offenders - BOARD_TOOLS == set()


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    return {name.split(".")[0] for name in names}
