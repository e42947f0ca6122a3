"""``cloud-service judge [--once | --interval S]``: the LLM judge's command line.

The cloud model is the escalation path's (``--triton-url``, ``--triton-model``, ``--prompt-format`` or
their ``CONFROUTE_CLOUD_*`` variables); Redis is ``--redis-url``. ``--judge-prompts FILE --judge-prompt
NAME`` picks another MT-Bench judge prompt than the built-in ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
from pathlib import Path

from cloud_service.backends.triton import TritonBackend, TritonBackendConfig
from cloud_service.config import ServiceConfig, config_from
from cloud_service.judge.config import JudgeConfig
from cloud_service.judge.judge import Judge
from cloud_service.judge.prompts import JudgePrompt, load_prompt
from cloud_service.judge.worker import JudgeWorker
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.redis_client import connect
from confroute.logs import configure_logging

_DEFAULTS = JudgeConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="env CONFROUTE_CLOUD_REDIS_URL")
    parser.add_argument("--triton-url", default=None, help="env CONFROUTE_CLOUD_TRITON_URL")
    parser.add_argument("--triton-model", default=None, help="env CONFROUTE_CLOUD_TRITON_MODEL")
    parser.add_argument("--prompt-format", default=None, help="env CONFROUTE_CLOUD_PROMPT_FORMAT")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="one pass, then exit (the default)")
    when.add_argument("--interval", type=float, default=None, metavar="S", help="a pass every S seconds")
    parser.add_argument("--method", choices=("single", "pairwise"), default=_DEFAULTS.method)
    parser.add_argument("--share", type=float, default=_DEFAULTS.share, help="share of eligible queries judged")
    parser.add_argument("--max-in-flight", type=int, default=_DEFAULTS.max_in_flight)
    parser.add_argument("--calls-per-second", type=float, default=_DEFAULTS.calls_per_second)
    parser.add_argument("--timeout-s", type=float, default=_DEFAULTS.timeout_s)
    parser.add_argument("--max-tokens", type=int, default=_DEFAULTS.max_tokens)
    parser.add_argument("--judge-prompts", type=Path, default=None, help="an MT-Bench judge_prompts.jsonl")
    parser.add_argument("--judge-prompt", default=None, help="the prompt's name in --judge-prompts")
    parser.add_argument("--consumer", default=None, help="consumer name in the group (default host-pid)")


def judge_config(args: argparse.Namespace) -> JudgeConfig:
    return JudgeConfig(
        method=args.method,
        share=args.share,
        max_in_flight=args.max_in_flight,
        calls_per_second=args.calls_per_second,
        timeout_s=args.timeout_s,
        max_tokens=args.max_tokens,
        consumer=args.consumer or f"{socket.gethostname()}-{os.getpid()}",
    )


def run(args: argparse.Namespace) -> int:
    service = config_from(args, os.environ)
    configure_logging(service.log_format, service.log_level)
    config = judge_config(args)
    prompt = load_prompt(args.judge_prompts, args.judge_prompt) if args.judge_prompts and args.judge_prompt else None
    asyncio.run(_run(service, config, prompt, args.interval))
    return 0


async def _run(service: ServiceConfig, config: JudgeConfig, prompt: JudgePrompt | None, interval_s: float | None
               ) -> None:
    backend = await TritonBackend.create(TritonBackendConfig(
        url=service.triton_url, model=service.triton_model, prompt_format=service.prompt_format))
    client = connect(service.redis_url, connect_timeout_s=1.0, command_timeout_s=30.0)
    judge = Judge(backend, config, prompt)
    worker = JudgeWorker(client, OutcomeLogConfig(url=service.redis_url, retain_text=True), judge, config)
    try:
        if interval_s is not None:
            await worker.run_forever(interval_s)
        print(json.dumps(dict(await worker.run_once()), sort_keys=True), flush=True)
    finally:
        await backend.close()
        await client.aclose()
