"""The one boundary between confroute and redis-py: clients built from one URL, errors translated.

Every redis-py exception that reaches the cloud service passes through :func:`translated`:

    redis.exceptions.OutOfMemoryError  -> confroute.errors.Overloaded   (Redis refuses writes: back off)
    any other redis.exceptions.RedisError -> confroute.errors.Unavailable (down, unreachable, auth, ...)

URLs may carry a password; only :func:`redacted` forms of them appear in messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import SplitResult, urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import OutOfMemoryError, RedisError

from confroute.errors import Overloaded, Unavailable

# One stream entry as redis-py returns it from a client that does not decode responses (RESP2).
StreamEntry = tuple[bytes, dict[bytes, bytes]]

_TCP_SCHEMES = ("redis", "rediss")
_FORM = "redis://[user:password@]host[:port][/db] (rediss:// for TLS, unix:///path/to/socket)"


def check_url(url: str, setting: str) -> None:
    """Raises ``ValueError`` naming ``setting`` unless ``url`` is a ``redis://``, ``rediss://`` or
    ``unix://`` URL that redis-py can use."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- parsing the port is what validates it
    except ValueError as exc:
        raise ValueError(f"{setting} must look like {_FORM}: {exc}") from exc
    if parts.scheme == "unix" and parts.path:
        return
    if parts.scheme not in _TCP_SCHEMES or not parts.hostname:
        raise ValueError(f"{setting} must look like {_FORM}, got {redacted(url)!r}")
    database = parts.path.lstrip("/")
    if database and not database.isdigit():
        raise ValueError(f"{setting} names database {database!r}; it must be a number, as in redis://host:6379/0")


def redacted(url: str) -> str:
    """The URL with its password, if any, replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return SplitResult(parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment).geturl()


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes for ``key``: the text between its first ``{`` and the next ``}``, or ""."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if start >= 0 and end > start + 1 else ""


def connect(url: str, *, connect_timeout_s: float, command_timeout_s: float) -> Redis:
    """A client (and its connection pool) for ``url``; nothing connects until the first command.

    redis-py retries once, after a short jittered pause, on a dropped connection: that reconnects the
    pool's stale connections after a Redis restart. Longer outages are the callers' to handle.
    """
    client: Redis = Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=command_timeout_s,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.05), retries=1),
    )
    return client


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Re-raises redis-py errors raised inside the block as confroute errors (see the module docstring)."""
    try:
        yield
    except OutOfMemoryError as exc:
        raise Overloaded(f"Redis is out of memory while {action}") from exc
    except RedisError as exc:
        raise Unavailable(f"Redis failed while {action}: {type(exc).__name__}: {exc}") from exc


def stream_entries(reply: Any) -> list[StreamEntry]:
    """The entries of an ``XRANGE``/``XREVRANGE`` reply."""
    return cast("list[StreamEntry]", reply or [])


def read_entries(reply: Any) -> list[StreamEntry]:
    """The entries of an ``XREAD`` reply, of all the streams read, in reply order."""
    if isinstance(reply, dict):  # RESP3 (``?protocol=3`` in the URL): {stream: [entries]}
        streams = cast("list[list[StreamEntry]]", [entries for entries, *_ in reply.values()])
    else:  # RESP2: [[stream, [entries]], ...]
        streams = [entries for _, entries in cast("list[tuple[bytes, list[StreamEntry]]]", reply or [])]
    return [entry for entries in streams for entry in entries]
