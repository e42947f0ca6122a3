"""The local cloud model behind a real tritonserver: its answers to the stream, and the judge's backend.

tritonserver runs the cloud bundle through the ``bundle_llm`` model in Triton's model environment
(``CONFROUTE_TRITON_PYTHON``, as ``make test`` and the judge's own tests set it); the service's
``TritonBackend`` talks to it over gRPC on loopback, as the escalation path and ``cloud-service judge`` do.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from cloud_service.backends.triton import TritonBackend, TritonBackendConfig
from cloud_service.inference import TritonServerConfig, TritonServerProcess
from cloud_service.inference.repository import MODEL_NAME, write_repository
from confroute.contract.common import ModelRef
from confroute.contract.enums import ChatRole, RoutingMode
from confroute.contract.escalation import ChatMessage, EscalationRequest, GenerationParams

STARTUP_TIMEOUT_S = 600.0  # loading a 0.5B bundle on a loaded 2-core machine


def triton_python(env: Mapping[str, str]) -> Path | None:
    """Triton's model environment, or None when it is not configured."""
    configured = env.get("CONFROUTE_TRITON_PYTHON")
    return Path(configured) if configured else None


@contextmanager
def local_cloud(bundle: Path, backend_python: Path) -> Iterator[str]:
    """A tritonserver serving ``bundle`` as ``bundle_llm``; yields its gRPC ``host:port``."""
    with tempfile.TemporaryDirectory(prefix="fleet-learning-triton-") as folder:
        repository = write_repository(Path(folder), bundle, threads=max(1, (os.cpu_count() or 2)), verify=False)
        config = TritonServerConfig(repository, backend_python=backend_python, startup_timeout_s=STARTUP_TIMEOUT_S)
        with TritonServerProcess(config) as process:
            yield process.endpoints.grpc_url


async def open_backend(url: str) -> TritonBackend:
    return await TritonBackend.create(TritonBackendConfig(url=url, model=MODEL_NAME, ready_timeout_s=30.0))


async def cloud_answers(backend: TritonBackend, chats: Sequence[Sequence[Mapping[str, str]]], max_tokens: int,
                        timeout_s: float = 600.0) -> list[str]:
    """The cloud model's greedy answers to each chat (what the service holds for a shadowed query)."""

    async def one(index: int, chat: Sequence[Mapping[str, str]]) -> str:
        request = EscalationRequest(
            query_id=f"cloud-{index}", device_id="bench-device", cohort="bench",
            edge_model=ModelRef("bench-edge", "1"),
            messages=tuple(ChatMessage(ChatRole(m["role"]), m["content"]) for m in chat),
            params=GenerationParams(max_tokens=max_tokens, temperature=0.0), mode=RoutingMode.PRE)
        return (await backend.generate(request, timeout_s)).text

    return list(await asyncio.gather(*(one(i, chat) for i, chat in enumerate(chats))))
