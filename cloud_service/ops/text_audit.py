"""How many bytes of given texts a Redis holds anywhere: every key's name and value, of every type, scanned
whole (``SCAN``; for audits and tests of text retention, not for a busy production server)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import redis


def text_bytes(url: str, texts: Iterable[str]) -> int:
    """The bytes of ``texts`` found in the Redis at ``url`` (each occurrence counted)."""
    needles = [text.encode() for text in texts if text]
    with redis.Redis.from_url(url) as client:
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
