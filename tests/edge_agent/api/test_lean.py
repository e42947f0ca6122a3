"""The API adds nothing heavy to the device image: uvicorn (h11) and starlette, no cloud, export or client modules."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("cloud_service", "redis", "tritonclient", "torch", "transformers", "openai", "httpx", "fastapi",
             "uvloop", "httptools", "websockets", "pydantic")


def test_importing_and_starting_the_api_loads_no_heavy_modules() -> None:
    probe = (
        "import sys, edge_agent.api;"
        "from edge_agent.api import serve_api;"
        "server = serve_api(type('A', (), {'model_ids': ('m',)})());"
        "server.shutdown();"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
