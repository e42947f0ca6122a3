"""``edge-agent``: the device's command line.

    edge-agent serve [--cloud HOST:PORT] [--listen 127.0.0.1:8080]   # OpenAI-compatible HTTP API on the device
    edge-agent ask "What is 12 times 7?" [--cloud ...]   # streams the answer, then one line of routing metadata
                                                        # (with ttft_ms: in post mode the answer waits for
                                                        # the decision, so it comes whole)
    edge-agent bundle update --cloud HOST:PORT --policy-key KEY.pub   # the cohort's bundle, signed and resumable
    edge-agent bundle rollback | status                 # the previous bundle back; versions (docs/bundle-delivery.md)
    edge-agent --version                                 # the installed release

Every option also reads ``CONFROUTE_EDGE_<OPTION>`` (e.g. ``CONFROUTE_EDGE_CLOUD``; docs/configuration.md lists
them all); the device's credential is ``CONFROUTE_EDGE_TOKEN`` only (never a flag: it would show in the process
list).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack

from confroute.engine import SamplingParams
from confroute.errors import ConfrouteError
from confroute.logs import configure_logging, report_error
from confroute.version import add_version_flag
from edge_agent import huge_pages
from edge_agent.answer import AgentAnswer
from edge_agent.app import running_agent, running_device
from edge_agent.bundles import command as bundle_command
from edge_agent.config import AgentConfig, add_arguments, config_from

log = logging.getLogger("edge_agent")


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, AgentConfig, argparse.Namespace]:
    args = build_parser().parse_args(argv)
    return args.command, config_from(args, env), args


def build_parser() -> argparse.ArgumentParser:
    """``edge-agent`` and its subcommands' flags."""
    parser = argparse.ArgumentParser(prog="edge-agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the agent with its OpenAI-compatible HTTP API")
    add_arguments(serve)
    ask = sub.add_parser("ask", help="answer one question and print its routing metadata")
    ask.add_argument("question")
    ask.add_argument("--max-tokens", type=int, default=256)
    ask.add_argument("--temperature", type=float, default=0.0)
    ask.add_argument("--top-p", type=float, default=1.0)
    ask.add_argument("--seed", type=int)
    add_arguments(ask)
    bundle_command.add_commands(sub)
    return parser


def ask(config: AgentConfig, args: argparse.Namespace) -> None:
    params = SamplingParams(max_new_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                            seed=args.seed)
    with running_agent(config) as agent:
        started = time.perf_counter()
        first_ms: float | None = None
        for event in agent.stream([{"role": "user", "content": args.question}], params):
            if isinstance(event, AgentAnswer):
                meta = {**event.routing(), "model": event.model, "tokens": event.completion_tokens,
                        "finish": event.finish_reason, "ttft_ms": None if first_ms is None else round(first_ms, 1)}
                print("\n" + json.dumps(meta))
            else:
                if first_ms is None and event.text:
                    first_ms = (time.perf_counter() - started) * 1000.0
                sys.stdout.write(event.text)
                sys.stdout.flush()


def serve(config: AgentConfig) -> None:
    from edge_agent.api import ApiConfig, serve_api

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with running_device(config) as device, ExitStack() as board:
        api = ApiConfig(host=config.http_host, port=config.http_port, cors_origins=config.cors_origins,
                        api_key=config.api_key, parallel=device.agent.parallel)
        if not config.api_key and config.http_host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("the HTTP API listens on %s without an API key (set CONFROUTE_EDGE_API_KEY)", config.http_host)
        server = serve_api(device.agent, api, device=device.status)
        if config.tegrastats_interval_ms:
            from edge_agent.platform.tegrastats import TegrastatsReader

            reader = board.enter_context(TegrastatsReader(config.tegrastats_interval_ms))
            server.metrics.add_source(reader.metric_lines)
        log.info("edge agent %s (cohort %s) serving on http://%s:%d/v1 (cloud: %s; huge-page malloc: %s)",
                 config.device_id, config.cohort, config.http_host, server.port,
                 config.cloud.target if config.cloud else "offline", "on" if huge_pages.active() else "off")
        print(f"http://{config.http_host}:{server.port}/v1", flush=True)
        try:
            stop.wait()
        finally:
            server.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(sys.argv[1:] if argv is None else argv, dict(os.environ), reexec=argv is None)
    except ConfrouteError as exc:
        report_error("edge-agent", exc)
        return 2


def _run(argv: Sequence[str], env: Mapping[str, str], *, reexec: bool) -> int:
    command, config, args = parse_args(argv, env)
    if command == "serve" and config.huge_pages and reexec:  # a long-running agent: decoding speed first
        huge_pages.reexec_with_huge_pages()
    configure_logging(config.log_format)
    if command == "bundle":
        return bundle_command.run(config, args)
    if command == "serve":
        serve(config)
    else:
        ask(config, args)
    return 0

if __name__ == "__main__":
    sys.exit(main())
