"""Simulated devices: many WatchPolicy streams over a few channels from one process, opened in a burst.

    python -m bench.fleetbench.watchers --target HOST:PORT --count N --channels C --prefix P
        --initial V1 --new V2 --connect-timeout S --update-timeout S

Protocol on stdout (one JSON object per line):
``{"connected": n}`` once every stream got ``V1`` (or the connect timeout passed), then
``{"received": [t, ...]}`` with the wall-clock time (``time.time()``) at which each stream got ``V2``
(streams that did not within the update timeout are missing), then exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

import grpc

from confroute.v1 import common_pb2, fleet_pb2, fleet_pb2_grpc

EDGE_MODEL = common_pb2.ModelRef(id="bench-edge", version="bench-1")


class Fleet:
    def __init__(self, count: int, initial: str, new: str) -> None:
        self.initial, self.new = initial, new
        self.connected = 0
        self.all_connected = asyncio.Event()
        self.received: list[float] = []
        self.all_received = asyncio.Event()
        self.count = count
        self.codes: dict[str, int] = {}

    def got(self, version: str) -> None:
        if version == self.initial:
            self.connected += 1
            if self.connected == self.count:
                self.all_connected.set()
        elif version == self.new:
            self.received.append(time.time())
            if len(self.received) == self.count:
                self.all_received.set()


async def watch(stub: fleet_pb2_grpc.FleetServiceStub, device_id: str, cohort: str, fleet: Fleet) -> None:
    request = fleet_pb2.WatchPolicyRequest(edge_model=EDGE_MODEL, cohort=cohort, device_id=device_id)
    try:
        async for response in stub.WatchPolicy(request):
            fleet.got(response.policy.policy_version)
    except grpc.aio.AioRpcError as exc:
        fleet.codes[exc.code().name] = fleet.codes.get(exc.code().name, 0) + 1


async def run(args: argparse.Namespace) -> None:
    options = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel
    channels = [grpc.aio.insecure_channel(args.target, options=options) for _ in range(args.channels)]
    stubs = [fleet_pb2_grpc.FleetServiceStub(channel) for channel in channels]  # type: ignore[no-untyped-call]
    fleet = Fleet(args.count, args.initial, args.new)
    tasks = [asyncio.create_task(watch(stubs[i % len(stubs)], f"{args.prefix}-{i}", args.cohort, fleet))
             for i in range(args.count)]
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(fleet.all_connected.wait(), args.connect_timeout)
    print(json.dumps({"connected": fleet.connected, "errors": fleet.codes}), flush=True)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(fleet.all_received.wait(), args.update_timeout)
    print(json.dumps({"received": fleet.received, "errors": fleet.codes}), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--channels", type=int, default=25)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--cohort", default="bench")
    parser.add_argument("--initial", required=True)
    parser.add_argument("--new", required=True)
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--update-timeout", type=float, default=60.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
