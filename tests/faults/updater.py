"""A process that updates a device's files for ever, for the fault suite to SIGKILL in the middle.

Usage: python -m tests.faults.updater policy PATH EDGE_MODEL_ID EDGE_MODEL_VERSION
       python -m tests.faults.updater probe BUNDLE
       python -m tests.faults.updater bundle BUNDLE
       python -m tests.faults.updater pair BUNDLE STATE

``policy``: offers a new policy to a ``PolicyKeeper`` saving to PATH (the device's path: validated,
then written atomically), version ``u<n>``, issued one second apart, going on after the one saved there.
``probe``: rewrites the bundle's ``tbg`` probe with ``confroute.bundle.probe.write_probe``, alternating two
weight sets (all 0.25 and all -0.25, bias 0), as training a probe on the device does. ``bundle``: exports
a tiny bundle over BUNDLE (``export_bundle``: staging folder, then renames), alternating two seeds, as a
device replacing its bundle does. ``pair``: offers policies that each carry a router probe (the two weight
sets in turn) to a ``PolicyKeeper`` with a ``ProbeInstaller`` on BUNDLE, saving to STATE, as a device that
receives probe + policy pairs from the fleet does. Each prints
``ready`` once its first update is done.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from confroute.bundle.probe import write_probe
from confroute.bundle.store import load_bundle
from confroute.contract import ModelRef
from confroute.contract.router_probe import RouterProbe
from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.tiny import tiny_source
from edge_agent.cloud import PolicyKeeper
from edge_agent.cloud.probe_install import ProbeInstaller
from edge_agent.model import EdgeModel
from tests.faults.device import always_escalate

COHORT = "faults"
FIRST = datetime(2026, 1, 1, tzinfo=timezone.utc)
PROBE_WEIGHTS = (0.25, -0.25)  # the two probes written in turn (every weight), bias 0
BUNDLE_SEEDS = (0, 1)  # the two tiny bundles exported in turn


def update_policies(path: Path, edge_model: ModelRef) -> None:
    keeper = PolicyKeeper(edge_model, COHORT, path)
    first = n = int(keeper.received_version[1:] or 0)  # a restarted updater goes on after what it saved
    while True:
        n += 1
        policy = always_escalate(edge_model, COHORT, f"u{n}", FIRST + timedelta(seconds=n))
        assert keeper.offer(dataclasses.replace(policy, shadow_rate=min(n, 999) / 1000.0)).applied
        if n == first + 1:
            print("ready", flush=True)


def update_probes(bundle: Path) -> None:
    dim = load_bundle(bundle).probe.feature_dim
    n = 0
    while True:
        weight = np.full(dim, PROBE_WEIGHTS[n % 2], dtype=np.float32)
        write_probe(bundle, "tbg", weight, 0.0, {"kind": "faults", "n": n})
        n += 1
        if n == 1:
            print("ready", flush=True)


def pair_keeper(bundle: Path, state: Path) -> tuple[EdgeModel, PolicyKeeper]:
    """The model and keeper of a device receiving probe + policy pairs (what ``edge_agent.app`` assembles)."""
    model = EdgeModel(bundle)
    probes = ProbeInstaller(bundle, model.version, model.load, model.swap, lambda: model.engine.manifest,
                            state)
    keeper = PolicyKeeper(ModelRef(model.model_id, model.version), COHORT, state / "policy.json", probes=probes)
    return model, keeper


def update_pairs(bundle: Path, state: Path) -> None:
    _model, keeper = pair_keeper(bundle, state)  # the model must stay alive: the keeper swaps it
    dim = load_bundle(bundle).probe.feature_dim
    first = n = int(keeper.received_version[1:] or 0)
    while True:
        n += 1
        probe = RouterProbe.of(keeper.edge_model.version, COHORT, np.full(dim, PROBE_WEIGHTS[n % 2]), 0.0, (0, 1))
        policy = always_escalate(keeper.edge_model, COHORT, f"u{n}", FIRST + timedelta(seconds=n))
        assert keeper.offer(dataclasses.replace(policy, probe_version=probe.version, probe=probe)).applied
        if n == first + 1:
            print("ready", flush=True)


def update_bundles(bundle: Path) -> None:
    n = 0
    while True:
        export_bundle(tiny_source("llama", seed=BUNDLE_SEEDS[n % 2]), bundle, ExportOptions(), lambda _message: None)
        n += 1
        if n == 1:
            print("ready", flush=True)


def main(argv: list[str]) -> int:
    if argv[0] == "policy":
        update_policies(Path(argv[1]), ModelRef(argv[2], argv[3]))
    elif argv[0] == "pair":
        update_pairs(Path(argv[1]), Path(argv[2]))
    elif argv[0] == "probe":
        update_probes(Path(argv[1]))
    else:
        update_bundles(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
