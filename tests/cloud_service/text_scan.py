"""How many bytes of given texts a test's Redis holds anywhere (``cloud_service.ops.text_audit``)."""

from __future__ import annotations

from collections.abc import Iterable

from cloud_service.ops.text_audit import text_bytes as audit
from tests.cloud_service.redis_server import RedisServer


def text_bytes(server: RedisServer, texts: Iterable[str]) -> int:
    return audit(server.url, texts)
