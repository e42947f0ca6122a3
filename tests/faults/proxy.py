"""A TCP proxy on loopback that can cut the network between the devices and the cloud.

``partition()`` drops every open connection and then stalls new ones (accepted, never forwarded: the
peer sees a silent network until its deadline), or with ``stall=False`` resets them at once (the peer
fails fast, as when the cloud's address refuses connections); ``heal()`` closes the stalled connections
and forwards again. It runs on its own event-loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.harness import LoopThread

CHUNK = 65536


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream`` (``host:port``) until partitioned."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._loop = LoopThread("tcp-proxy")
        self._open: set[asyncio.StreamWriter] = set()
        self._stalled: set[asyncio.StreamWriter] = set()
        self._partitioned = False
        self._stall = True
        self._server = self._loop.run(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port: int = self._server.sockets[0].getsockname()[1]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def partition(self, *, stall: bool = True) -> None:
        self._stall = stall
        self._loop.run(self._set(partitioned=True))

    def heal(self) -> None:
        self._loop.run(self._set(partitioned=False))

    def close(self) -> None:
        self._loop.run(self._shutdown())
        self._loop.close()

    async def _set(self, *, partitioned: bool) -> None:
        self._partitioned = partitioned
        doomed = self._open if partitioned else self._stalled
        for writer in list(doomed):
            writer.transport.abort()
        doomed.clear()

    async def _shutdown(self) -> None:
        self._server.close()
        for writer in [*self._open, *self._stalled]:
            writer.transport.abort()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._partitioned and not self._stall:
            writer.transport.abort()
            return
        if self._partitioned:
            self._stalled.add(writer)  # read nothing, answer nothing
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(CHUNK):
                writer.write(chunk)
                await writer.drain()
        self._open.discard(writer)
        writer.transport.abort()
