"""The device image stays lean: the edge agent's entry points load no cloud or export code, and the package
holds no orchestration of other processes (the demo that starts both sides lives in the top-level ``demo``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import edge_agent

FORBIDDEN = ("cloud_service", "redis", "tritonclient", "torch", "transformers", "onnx", "gguf")
NO_ORCHESTRATION = (*FORBIDDEN, "subprocess", "multiprocessing", "demo", "bench")


def test_the_edge_agent_entry_point_loads_no_cloud_or_export_modules() -> None:
    probe = (
        "import sys, edge_agent.cli, edge_agent.model, edge_agent.app, confroute.engine;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_no_edge_agent_module_imports_process_orchestration_or_cloud_code() -> None:
    root = Path(edge_agent.__file__).parent
    offenders = {
        f"{path.relative_to(root)}: {name}"
        for path in root.rglob("*.py")
        for name in _imported_roots(path)
        if name in NO_ORCHESTRATION
    }
    assert offenders == set()


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    return {name.split(".")[0] for name in names}
