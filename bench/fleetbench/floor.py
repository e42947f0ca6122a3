"""The floor under policy fan-out: a bare grpc.aio server that pushes one shared, pre-built message to every watcher.

    python -m bench.fleetbench.floor --initial HEX

Serves ``WatchPolicy`` of ``confroute.v1.FleetService`` as a raw unary-stream method: the request is not
decoded, no interceptor, authentication, store, policy object or per-watcher state beyond the stream's own
task. Every stream first gets the ``--initial`` response (serialized ``WatchPolicyResponse``, hex), then
each message the benchmark writes to stdin (one hex line each): decoded once, the same bytes written to
every stream, as fast as grpc.aio writes them. It runs on the service's event loop, with its gRPC server
options and garbage-collector threshold (``ServiceConfig``), so that what remains between it and
``bench.fleetbench.server`` is the service's own work. Prints ``port <n>`` once serving; ends at stdin's end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

from cloud_service import event_loop
from cloud_service.config import ServiceConfig
from cloud_service.server.app import server_options
from confroute.v1 import fleet_pb2

SERVICE = fleet_pb2.DESCRIPTOR.services_by_name["FleetService"].full_name


class Broadcast:
    """The latest message and an Event set when the next one replaces it (one Event per message, as the
    service's policy hub does: the fastest way found to wake thousands of waiters)."""

    def __init__(self, initial: bytes) -> None:
        self.latest = initial
        self.changed = asyncio.Event()

    def publish(self, message: bytes) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        self.latest = message
        changed.set()

    async def follow(self) -> AsyncIterator[bytes]:
        while True:
            changed = self.changed
            yield self.latest
            await changed.wait()


async def serve(initial: bytes) -> None:
    broadcast = Broadcast(initial)

    async def watch(_request: bytes, _context: Any) -> AsyncIterator[bytes]:
        async for message in broadcast.follow():
            yield message

    server = grpc.aio.server(options=server_options(ServiceConfig(listen="127.0.0.1:0", metrics_listen="")))
    handler = grpc.unary_stream_rpc_method_handler(watch)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"WatchPolicy": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"port {port}", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        broadcast.publish(bytes.fromhex(line.strip()))
    await server.stop(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--initial", required=True, help="the first response every watcher gets (hex)")
    args = parser.parse_args()
    if ServiceConfig.gc_threshold:
        gc.set_threshold(ServiceConfig.gc_threshold)
    event_loop.run(serve(bytes.fromhex(args.initial)))


if __name__ == "__main__":
    main()
