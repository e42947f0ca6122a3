"""Simulated devices: many WatchPolicy streams over a few channels from one process, opened in a burst.

    python -m bench.fleetbench.watchers --target HOST:PORT --count N --channels C --prefix P
        --initial V1 --new V2,V3,... --connect-timeout S --update-timeout S

Protocol on stdout (one JSON object per line):
``{"connected": n}`` once every stream got ``V1`` (or the connect timeout passed), then for each new
version in order ``{"received": [t, ...]}`` with the wall-clock time (``time.time()``) at which each
stream got it (streams that did not within the update timeout are missing), then exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import time

import grpc

from confroute.v1 import common_pb2, fleet_pb2, fleet_pb2_grpc

EDGE_MODEL = common_pb2.ModelRef(id="bench-edge", version="bench-1")


class Fleet:
    def __init__(self, count: int, initial: str, new: list[str]) -> None:
        self.initial = initial
        self.connected = 0
        self.all_connected = asyncio.Event()
        self.received: dict[str, list[float]] = {version: [] for version in new}
        self.all_received = {version: asyncio.Event() for version in new}
        self.count = count
        self.codes: dict[str, int] = {}

    def got(self, version: str) -> None:
        if version == self.initial:
            self.connected += 1
            if self.connected == self.count:
                self.all_connected.set()
        elif version in self.received:
            times = self.received[version]
            times.append(time.time())
            if len(times) == self.count:
                self.all_received[version].set()


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
    fleet = Fleet(args.count, args.initial, args.new.split(","))
    tasks = [asyncio.create_task(watch(stubs[i % len(stubs)], f"{args.prefix}-{i}", args.cohort, fleet))
             for i in range(args.count)]
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(fleet.all_connected.wait(), args.connect_timeout)
    print(json.dumps({"connected": fleet.connected, "errors": fleet.codes}), flush=True)
    for version, received in fleet.all_received.items():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(received.wait(), args.update_timeout)
        print(json.dumps({"received": fleet.received[version], "errors": fleet.codes}), flush=True)
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
    parser.add_argument("--new", required=True, help="comma-separated versions, published in this order")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--update-timeout", type=float, default=60.0)
    # A real device holds one stream; thousands in one process make the young-generation collector run
    # through the fan-out, a cost of the simulation, not of the fleet.
    gc.set_threshold(100_000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
