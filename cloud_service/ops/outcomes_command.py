"""``cloud-service outcomes tail [--last N] [--once] [--json]``: the outcome log live (see
:mod:`cloud_service.ops.outcomes_tail`); Redis is the service's ``--redis-url``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from cloud_service.config import config_from
from cloud_service.ops.outcomes_tail import OutcomeTail, TailEvent, as_line, follow
from cloud_service.stores import open_redis_client, outcome_log_config
from cloud_service.worker_command import add_service_flags


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    outcomes = commands.add_parser("outcomes", help="read the outcome log")
    actions = outcomes.add_subparsers(required=True, metavar="ACTION")
    tail = actions.add_parser("tail", help="records and late labels as they arrive")
    add_service_flags(tail, ("redis_url",), logging=False)
    tail.add_argument("--last", type=int, default=10, metavar="N", help="start with the newest N of each stream")
    tail.add_argument("--once", action="store_true", help="print them and exit")
    tail.add_argument("--interval", type=float, default=0.5, metavar="S", help="poll every S seconds")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(run=run_tail)


def run_tail(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(args))
    return 0


async def _tail(args: argparse.Namespace) -> None:
    service = config_from(args, os.environ)
    async with open_redis_client(service) as client:
        tail = OutcomeTail(client, outcome_log_config(service))

        def show(event: TailEvent) -> None:
            print(as_line(event, args.json), flush=True)

        for event in await tail.start(max(args.last, 0)):
            show(event)
        if not args.once:
            await follow(tail, show, args.interval)
