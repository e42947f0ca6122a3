"""``edge-agent serve`` as a process: an OpenAI client talks to it, and SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_edge_agent_serve_answers_an_openai_client_and_stops_on_sigterm(tiny_bundles: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    from openai import OpenAI

    command = [sys.executable, "-m", "edge_agent.cli", "serve", "--bundle", str(tiny_bundles["llama"]),
               "--listen", "127.0.0.1:0", "--state-dir", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        with OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
            reply = client.chat.completions.create(model="tiny-random-llama", max_tokens=4,
                                                   messages=[{"role": "user", "content": "hello"}])
        assert reply.choices[0].message.content is not None
        assert reply.model_extra is not None and reply.model_extra["confroute"]["side"] == "edge"
        metrics = urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=10).read().decode()
        assert "confroute_edge_outbox_depth 1.0" in metrics and "confroute_edge_policy_info{" in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert (tmp_path / "outbox.db").exists()
