"""``edge-agent bundle update|rollback|status``: the device's bundle, updated from its cohort's release.

``update`` needs ``--cloud`` and at least one ``--policy-key`` (a bundle is installed only when signed by a
key the device trusts for policies: there is no unsigned mode for a whole model). It runs once and exits, so
a timer or the operator decides when (docs/bundle-delivery.md); an agent that is serving keeps its loaded bundle
until it is restarted. Each command prints one JSON object.
"""

from __future__ import annotations

import argparse
import json

from confroute.bundle.store import previous_of
from confroute.errors import InvalidInput
from confroute.signing.bundle_signature import ReleaseVerifier
from confroute.signing.keys import load_trusted_keys
from edge_agent.bundles.source import GrpcBundleSource
from edge_agent.bundles.update import BundleUpdater, UpdateResult, installed_version, rollback
from edge_agent.cloud.channel import call_metadata, open_channel
from edge_agent.config import AgentConfig, add_arguments

ACTIONS = ("update", "rollback", "status")


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``bundle update``, ``bundle rollback`` and ``bundle status``, each with the agent's flags."""
    bundle = sub.add_parser("bundle", help="update the model bundle from the cloud, or roll it back")
    actions = bundle.add_subparsers(dest="bundle_action", required=True)
    helps = {"update": "download the cohort's current bundle (signed, resumable) and swap it in",
             "rollback": "make the previous bundle (kept by the last update) the bundle again",
             "status": "the bundle's version and the previous one kept"}
    for action in ACTIONS:
        add_arguments(actions.add_parser(action, help=helps[action]))


def run(config: AgentConfig, args: argparse.Namespace) -> int:
    if args.bundle_action == "update":
        result = update(config)
    elif args.bundle_action == "rollback":
        result = rollback(config.bundle, config.state_dir)
    else:
        print(json.dumps({"bundle": str(config.bundle), "bundle_version": installed_version(config.bundle),
                          "previous_version": installed_version(previous_of(config.bundle))}))
        return 0
    print(json.dumps(result.as_dict()))
    return 0


def update(config: AgentConfig) -> UpdateResult:
    """One update of ``config.bundle`` from the cohort's release at ``config.cloud``."""
    if config.cloud is None:
        raise InvalidInput("bundle update needs --cloud HOST:PORT", field="cloud")
    if not config.policy_keys:
        raise InvalidInput("bundle update needs --policy-key: bundles are installed only when signed by a "
                           "trusted key", field="policy_keys")
    check = ReleaseVerifier(load_trusted_keys(config.policy_keys))
    channel = open_channel(config.cloud)
    try:
        source = GrpcBundleSource(channel, call_metadata(config.cloud), config.device_id, config.cohort)
        return BundleUpdater(config.bundle, config.state_dir, source, check, config.cohort).update()
    finally:
        channel.close()
