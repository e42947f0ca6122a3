"""The one boundary between confroute and redis-py: clients built from one URL, errors translated.

Every redis-py exception that reaches the cloud service passes through :func:`translated`:

    redis.exceptions.OutOfMemoryError  -> confroute.errors.Overloaded   (Redis refuses writes: back off)
    any other redis.exceptions.RedisError -> confroute.errors.Unavailable (down, unreachable, auth, ...)
    redis.exceptions.RedisClusterException -> confroute.errors.Unavailable (no reachable node, slot not covered)

URLs may carry a password; only :func:`redacted` forms of them appear in messages. One URL picks the
deployment: ``redis://`` (``rediss://``, ``unix://``) a single server, ``redis+cluster://`` (``rediss+cluster://``)
a Redis Cluster; every caller takes the :data:`RedisClient` that :func:`connect` builds from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias, cast
from urllib.parse import SplitResult, unquote, urlsplit

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    InvalidResponse,
    NoScriptError,
    OutOfMemoryError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from confroute.errors import Overloaded, Unavailable

# What every caller holds: a single server's client or a cluster's. Both speak the commands the callers use;
# the keys each call touches share one hash tag, so the cluster client routes every call to one node.
RedisClient: TypeAlias = Redis | RedisCluster

# One stream entry as redis-py returns it from a client that does not decode responses (RESP2).
StreamEntry = tuple[bytes, dict[bytes, bytes]]

_TCP_SCHEMES = ("redis", "rediss")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
_FORM = ("redis://[user:password@]host[:port][/db] (rediss:// for TLS, unix:///path/to/socket), or "
         "redis+cluster://[user:password@]host[:port][,host[:port]...] for a Redis Cluster (rediss+cluster:// for TLS)")
_DEFAULT_PORT = 6379


@dataclass(frozen=True)
class ClusterUrl:
    """A ``redis+cluster://`` URL taken apart: the startup nodes the client asks for the cluster's layout."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_cluster_url(url: str) -> ClusterUrl:
    """``redis+cluster://[user:password@]host[:port][,host[:port]...][/0]`` (``rediss+cluster://``: TLS).

    Raises ``ValueError``: a cluster has database 0 only, and the URL takes no query (redis-py's cluster
    client does not read one, so an option there would be silently ignored).
    """
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Redis Cluster URL (redis+cluster:// or rediss+cluster://): {redacted(url)!r}")
    if parts.path not in ("", "/", "/0"):
        raise ValueError(f"a Redis Cluster has database 0 only, got path {parts.path!r}")
    if parts.query or parts.fragment:
        raise ValueError("a Redis Cluster URL takes no query or fragment")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    nodes = tuple(_node(host) for host in hosts.split(","))
    return ClusterUrl(nodes, unquote(user) or None, unquote(password) if colon else None,
                      tls=parts.scheme == "rediss+cluster")


def _node(address: str) -> tuple[str, int]:
    node = urlsplit(f"//{address}")
    port = node.port  # raises ValueError when not a number in [0, 65535]
    if not node.hostname or node.username is not None:
        raise ValueError(f"a Redis Cluster node must be host[:port], got {address!r}")
    return node.hostname, port if port is not None else _DEFAULT_PORT


def check_url(url: str, setting: str) -> None:
    """Raises ``ValueError`` naming ``setting`` unless ``url`` is a ``redis://``, ``rediss://``,
    ``unix://``, ``redis+cluster://`` or ``rediss+cluster://`` URL that redis-py can use."""
    try:
        parts = urlsplit(url)
        if parts.scheme in CLUSTER_SCHEMES:
            parse_cluster_url(url)
            return
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


def connect(url: str, *, connect_timeout_s: float, command_timeout_s: float) -> RedisClient:
    """A client (and its connection pools) for ``url``; nothing connects until the first command.

    ``url`` picks the deployment, and this is the one place that reads it:

    - ``redis://[user:password@]host[:port][/db]`` (``rediss://`` for TLS, ``unix:///path``): one server,
      a :class:`redis.asyncio.Redis`;
    - ``redis+cluster://[user:password@]host[:port][,host[:port]...]`` (``rediss+cluster://`` for TLS):
      a Redis Cluster, a :class:`redis.asyncio.cluster.RedisCluster` that asks the listed startup nodes
      (any reachable one is enough) for the slot layout and follows it as it changes.

    redis-py retries once, after a short jittered pause, on a dropped connection: that reconnects the
    pool's stale connections after a Redis restart (or, on a cluster, refreshes the slot layout after a
    failover). Longer outages are the callers' to handle.
    """
    retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.05), retries=1)
    if urlsplit(url).scheme in CLUSTER_SCHEMES:
        cluster = parse_cluster_url(url)
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes],
            username=cluster.username,
            password=cluster.password,
            ssl=cluster.tls,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=command_timeout_s,
            retry=retry,
        )
    client: Redis = Redis.from_url(
        url, socket_connect_timeout=connect_timeout_s, socket_timeout=command_timeout_s, retry=retry
    )
    return client


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Re-raises redis-py errors raised inside the block as confroute errors (see the module docstring)."""
    try:
        yield
    except OutOfMemoryError as exc:
        raise Overloaded(f"Redis is out of memory while {action}") from exc
    except (RedisError, RedisClusterException) as exc:  # the latter is no RedisError
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


def packed(*args: str | bytes | int | float) -> bytes:
    """One command in RESP, as redis-py would send it (numbers as their ``repr``)."""
    parts = [arg if isinstance(arg, bytes) else (arg if isinstance(arg, str) else repr(arg)).encode() for arg in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


class HeldConnection:
    """One connection of a single server's pool, held by one caller for its pipelined hot-path commands.

    redis-py opens it (TLS, ACL user, password, database: whatever the URL says) and closes it with the
    client; the commands go out pre-packed in one write and their replies are parsed with hiredis straight
    off the connection's stream, without redis-py's per-command machinery (about 95 µs of CPU per lone
    command on a 2-core box, against about 20 µs this way; ad hoc, docs/service-profile.md). Error replies
    come back as redis-py exceptions in the list, not raised; a failed connection raises redis-py's
    ConnectionError or TimeoutError (callers translate them) and is reconnected by the next call, after
    one retry like redis-py's own. One batch at a time: the caller serializes its calls.
    """

    def __init__(self, client: Redis) -> None:
        self._pool = client.connection_pool
        self._connection: Any = None  # a redis.asyncio Connection, SSLConnection or UnixDomainSocketConnection
        self._stream: asyncio.StreamReader | None = None  # the stream ``_replies`` parses
        self._replies = hiredis.Reader(protocolError=InvalidResponse, replyError=_reply_error)

    async def execute(self, commands: bytes, count: int) -> list[Any]:
        """Sends ``commands`` (``count`` packed commands) and returns their ``count`` replies in order."""
        try:
            return await self._round_trip(commands, count)
        except (RedisConnectionError, RedisTimeoutError):  # a stale connection, after a Redis restart
            return await self._round_trip(commands, count)

    async def _round_trip(self, commands: bytes, count: int) -> list[Any]:
        connection = await self._connected()
        try:
            async with asyncio.timeout(connection.socket_timeout):
                writer: asyncio.StreamWriter = connection._writer
                writer.write(commands)
                await writer.drain()
                return await self._read(connection._reader, count)
        except BaseException as exc:  # the stream is in an unknown state: reconnect next time
            connection._close()
            self._stream = None
            if isinstance(exc, TimeoutError):
                raise RedisTimeoutError("Timeout reading from Redis") from exc
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"Error while talking to Redis: {exc}") from exc
            raise

    async def _read(self, stream: asyncio.StreamReader, count: int) -> list[Any]:
        replies: list[Any] = []
        parser = self._replies
        while len(replies) < count:
            reply = parser.gets()
            if reply is False:
                data = await stream.read(65536)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                parser.feed(data)
            else:
                replies.append(reply)
        return replies

    async def _connected(self) -> Any:
        if self._connection is None:
            self._connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]  # held: back to the pool with the client
        connection = self._connection
        if not connection.is_connected:
            await connection.connect()
        if connection._reader is not self._stream:  # a new connection: a new parser
            self._replies = hiredis.Reader(protocolError=InvalidResponse, replyError=_reply_error)
            self._stream = connection._reader
        return connection


_REPLY_ERRORS: Sequence[tuple[str, type[ResponseError]]] = (
    ("NOSCRIPT ", NoScriptError),
    ("OOM ", OutOfMemoryError),
)


def _reply_error(message: str) -> ResponseError:
    for prefix, error in _REPLY_ERRORS:
        if message.startswith(prefix):
            return error(message[len(prefix):])
    return ResponseError(message)
