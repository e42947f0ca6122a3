"""How many bytes of given texts a Redis holds anywhere: every key of every type, scanned whole."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import redis

from tests.cloud_service.redis_server import RedisServer


def text_bytes(server: RedisServer, texts: Iterable[str]) -> int:
    """The bytes of ``texts`` found in any key's name or value (each occurrence counted)."""
    needles = [text.encode() for text in texts if text]
    with redis.Redis.from_url(server.url) as client:
        return sum(blob.count(needle) * len(needle) for blob in _blobs(client) for needle in needles)


def _blobs(client: Any) -> Iterator[bytes]:
    for key in client.scan_iter(count=1000):
        yield key
        kind = client.type(key).decode()
        if kind == "string":
            yield client.get(key) or b""
        elif kind == "hash":
            for field, value in client.hgetall(key).items():
                yield field + b"\0" + value
        elif kind == "stream":
            for _, fields in client.xrange(key):
                yield b"\0".join(part for pair in fields.items() for part in pair)
        elif kind == "list":
            yield from client.lrange(key, 0, -1)
        elif kind == "set":
            yield from client.smembers(key)
        elif kind == "zset":
            yield from client.zrange(key, 0, -1)
