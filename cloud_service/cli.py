"""``cloud-service``: the cloud side's command line.

- ``cloud-service serve``: the gRPC service (flags or ``CONFROUTE_CLOUD_*``, see ``--help``) until
  SIGINT or SIGTERM, then a graceful shutdown.
- ``cloud-service triton``: the bundled ``tritonserver`` on a model repository (default: the echo
  model), printing its URLs, until SIGINT or SIGTERM. The models' environment is
  ``--backend-python`` or ``CONFROUTE_TRITON_PYTHON`` (a venv with nvidia-pytriton and numpy<2).
  ``--bundle DIR`` serves a confroute bundle as the model ``bundle_llm`` (next to echo) from a
  repository generated in a temporary folder.
- ``cloud-service policy set`` / ``policy get``: an operator publishes a routing policy (from a JSON
  file in the protobuf JSON form of ``confroute.v1.Policy``, or from flags) or shows the current one.
  Published policies are signed with ``--policy-signing-key`` / ``CONFROUTE_CLOUD_POLICY_SIGNING_KEY``.
  Every ``policy`` command but ``keygen`` runs through the service with ``--service HOST:PORT`` and an
  operator credential (see ``cloud_service.operator.client``; the service signs), or on Redis directly.
- ``cloud-service backpressure``: lowers the fleet's thresholds within a band while Triton is overloaded
  (see ``cloud_service.policies.backpressure``), restoring them when load falls.
- ``cloud-service policy keygen STEM``: writes an Ed25519 key pair for signing policies.
- ``cloud-service policy show|diff``: a key's rollout and policies; what changed between two versions
  (see ``cloud_service.ops.policy_view``).
- ``cloud-service policy promote|rollback|pin|unpin|history``: the canary rollout of one (edge model
  version, cohort), by hand (see ``cloud_service.policies.operations``).
- ``cloud-service recalibrate [--once | --interval S]``: folds new outcomes into the statistics and
  publishes a recalibrated policy per (edge model version, cohort) (see ``cloud_service.calibration``).
- ``cloud-service retrain --edge-bundle DIR [--once | --interval S]``: refits the router probe per
  (edge build, cohort) from the logged labels and the judge's extracted features (``cloud_service.retrain``).
- ``cloud-service ca init|server-cert`` and ``cloud-service devices enroll|list|revoke|rotate``: the fleet
  CA and the enrolled devices and operators (see ``cloud_service.identity.command``, docs/identity.md).
- ``cloud-service status [--json]``: the service, Triton, the outcome log, access refusals, the fleet's
  uploads and policies, and the alerts firing in Prometheus, on one screen (see ``cloud_service.ops``).
- ``cloud-service outcomes tail [--last N] [--once] [--json]``: the outcome log live, records and late
  labels as they arrive.
- ``cloud-service bundle publish DIR --cohort C`` / ``bundle list``: a model bundle published (signed) as a
  cohort's current one, which its devices download with ``edge-agent bundle update`` (docs/bundle-delivery.md).
- ``cloud-service judge [--once | --interval S]``: labels shadowed outcomes with the cloud model as an
  LLM judge (see ``cloud_service.judge``).

Exit status: 0 on success, 1 when a dependency failed or nothing was found, 2 for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from cloud_service import event_loop
from cloud_service.config import add_arguments, config_from
from cloud_service.inference import TritonServerConfig, TritonServerProcess
from cloud_service.inference.repository import write_repository
from cloud_service.operator.admin import PolicyAdmin, StoreAdmin
from cloud_service.operator.client import add_service_arguments, open_remote_admin, target_from
from cloud_service.ops import policy_view
from cloud_service.policies import backpressure_command
from cloud_service.server import policy_admin
from cloud_service.server.runner import serve
from cloud_service.stores import open_policy_store, open_redis_stores
from cloud_service.worker_command import add_service_flags
from confroute.errors import ConfrouteError, InvalidInput
from confroute.logs import configure_logging, report_error
from confroute.version import add_version_flag

DEFAULT_REPOSITORY = Path(__file__).resolve().parent / "model_repository"
BUNDLE_STARTUP_TIMEOUT_S = 300.0  # loading and verifying a large bundle takes longer than Triton's own start


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cloud-service``."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ConfrouteError as exc:
        report_error("cloud-service", exc)
        return 2 if isinstance(exc, InvalidInput) else 1
    return code


def _serve(args: argparse.Namespace) -> int:
    config = config_from(args, os.environ)
    configure_logging(config.log_format, config.log_level)
    if config.gc_threshold:
        gc.set_threshold(config.gc_threshold)
    event_loop.run(serve(config, open_redis_stores), config.event_loop)
    return 0


def _triton(args: argparse.Namespace) -> int:
    if args.bundle is None:
        return _run_triton(args, Path(args.model_repository), startup_timeout_s=30.0)
    with tempfile.TemporaryDirectory(prefix="confroute-models-") as scratch:
        repository = write_repository(Path(scratch), Path(args.bundle), include_echo=True)
        return _run_triton(args, repository, startup_timeout_s=BUNDLE_STARTUP_TIMEOUT_S)


def _run_triton(args: argparse.Namespace, repository: Path, startup_timeout_s: float) -> int:
    python = args.backend_python or os.environ.get("CONFROUTE_TRITON_PYTHON")
    config = TritonServerConfig(
        model_repository=repository,
        backend_python=Path(python) if python else None,
        host=args.host,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        startup_timeout_s=startup_timeout_s,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with TritonServerProcess(config) as process:
        endpoints = process.endpoints
        print(
            f"grpc    {endpoints.grpc_url}",
            f"http    {endpoints.http_url}",
            f"metrics {endpoints.metrics_url}",
            sep="\n",
            flush=True,
        )
        while process.running and not stop.wait(0.5):
            pass
        return 0 if stop.is_set() else 1


def _policy_set(args: argparse.Namespace) -> int:
    policy = policy_admin.policy_from_args(args)

    async def publish(admin: PolicyAdmin) -> int:
        print(policy_admin.to_json(await admin.set_policy(policy, "published")))  # as issued: stamped, signed
        return 0

    return _with_admin(args, publish)


def _policy_get(args: argparse.Namespace) -> int:
    async def show(admin: PolicyAdmin) -> int:
        policy = (await admin.rollout(args.edge_model_version, args.cohort)).policy_for("")
        if policy is None:
            print(f"no policy for edge model {args.edge_model_version} in cohort {args.cohort!r}", file=sys.stderr)
            return 1
        print(policy_admin.to_json(policy))
        return 0

    return _with_admin(args, show)


def _with_admin(args: argparse.Namespace, action: Callable[[PolicyAdmin], Awaitable[int]]) -> int:
    """Runs ``action`` through the service (``--service``, an operator credential) or on Redis directly."""
    target = target_from(args, os.environ)

    async def run() -> int:
        if target is not None:
            async with open_remote_admin(target) as remote:
                return await action(remote)
        async with open_policy_store(config_from(args, os.environ)) as store:
            return await action(StoreAdmin(store))

    return asyncio.run(run())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cloud-service", description=__doc__.split("\n\n")[0])
    add_version_flag(parser)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    serve_cmd = commands.add_parser("serve", help="run the gRPC service")
    add_arguments(serve_cmd)
    serve_cmd.set_defaults(run=_serve)
    triton = commands.add_parser("triton", help="run the bundled tritonserver on a model repository")
    source = triton.add_mutually_exclusive_group()
    source.add_argument("--model-repository", default=str(DEFAULT_REPOSITORY))
    source.add_argument("--bundle", default=None, help="serve this confroute bundle as model bundle_llm")
    triton.add_argument("--backend-python", default=None, help="interpreter of the models' environment")
    triton.add_argument("--host", default="127.0.0.1")
    for name, port in (("grpc", 8001), ("http", 8000), ("metrics", 8002)):
        triton.add_argument(f"--{name}-port", type=int, default=port, help=f"default {port}; 0 picks a free one")
    triton.set_defaults(run=_triton)
    _add_policy_commands(commands)
    _add_calibration_commands(commands)
    _add_identity_commands(commands)
    _add_ops_commands(commands)
    _add_bundle_commands(commands)
    backpressure = commands.add_parser("backpressure", help="raise the bar for escalating while Triton is overloaded")
    backpressure_command.add_arguments(backpressure)
    backpressure.set_defaults(run=backpressure_command.run)
    return parser


def _add_policy_commands(commands: Any) -> None:
    policy = commands.add_parser("policy", help="publish or show routing policies")
    actions = policy.add_subparsers(required=True, metavar="ACTION")
    set_cmd = actions.add_parser("set", help="publish a policy from --file or from flags")
    add_service_flags(set_cmd, ("redis_url", "policy_signing_key"), logging=False)
    policy_admin.add_policy_arguments(set_cmd)
    add_service_arguments(set_cmd)
    set_cmd.set_defaults(run=_policy_set)
    get_cmd = actions.add_parser("get", help="print the current policy as JSON")
    add_service_flags(get_cmd, ("redis_url",), logging=False)
    add_service_arguments(get_cmd)
    get_cmd.add_argument("--edge-model-version", required=True)
    get_cmd.add_argument("--cohort", default="")
    get_cmd.set_defaults(run=_policy_get)
    policy_admin.add_rollout_commands(actions, _with_admin)
    policy_view.add_commands(actions, _with_admin)


def _add_calibration_commands(commands: Any) -> None:
    from cloud_service.calibration import command as recalibrate_command
    from cloud_service.judge import command as judge_command

    recalibrate = commands.add_parser("recalibrate", help="recalibrate policies from the logged outcomes")
    recalibrate_command.add_arguments(recalibrate)
    recalibrate.set_defaults(run=recalibrate_command.run)
    judge = commands.add_parser("judge", help="label shadowed outcomes with the cloud model as judge")
    judge_command.add_arguments(judge)
    judge.set_defaults(run=judge_command.run)
    from cloud_service.retrain import command as retrain_command

    retrain = commands.add_parser("retrain", help="refit router probes from the fleet's labels and features")
    retrain_command.add_arguments(retrain)
    retrain.set_defaults(run=retrain_command.run)


def _add_ops_commands(commands: Any) -> None:
    from cloud_service.ops import outcomes_command, status_command

    outcomes_command.add_commands(commands)
    status = commands.add_parser("status", help="the cloud side on one screen (the service's status API)")
    status_command.add_arguments(status)
    status.set_defaults(run=status_command.run)


def _add_bundle_commands(commands: Any) -> None:
    from cloud_service.bundles import command as bundle_command

    bundle_command.add_commands(commands)


def _add_identity_commands(commands: Any) -> None:
    from cloud_service.identity import command as identity_command

    identity_command.add_commands(commands)


if __name__ == "__main__":
    sys.exit(main())
