"""A device process SIGKILLed in the middle of updating its files: the previous version (or the new one)
stays usable, never a mix.

A child process (``tests.faults.updater``) updates a saved policy, or a bundle's probe, as fast as it can
(through the product's own code: ``PolicyKeeper``, ``write_probe``); the test SIGKILLs it at a random
moment, then opens what it left the way a restarted agent does. Repeated ``KILLS`` times, so that kills
land in every step of an update (the write, the fsync, between the two files of a probe update).
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from confroute.bundle.probe import read_probe
from confroute.bundle.store import load_bundle
from confroute.contract import ModelRef
from edge_agent.cloud import PolicyKeeper
from edge_agent.cloud.probe_install import delivered_version
from edge_agent.model import EdgeModel
from tests.faults.stack import ROOT, START_TIMEOUT_S
from tests.faults.updater import BUNDLE_SEEDS, COHORT, PROBE_WEIGHTS, pair_keeper

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(240)]

KILLS = 12
MAX_RUN_S = 0.3  # how long an updater runs after its first update before the kill (uniformly random)


def kill_while_updating(argv: list[str], rng: random.Random) -> None:
    """Starts ``tests.faults.updater`` with ``argv``, lets it update for a random while, SIGKILLs it."""
    with subprocess.Popen([sys.executable, "-m", "tests.faults.updater", *argv], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert first.strip() == "ready", first + process.stdout.read()
            time.sleep(rng.uniform(0.0, MAX_RUN_S))
            process.send_signal(signal.SIGKILL)
            assert process.wait(START_TIMEOUT_S) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()


def test_a_device_killed_while_saving_policies_restarts_on_a_whole_one(edge_bundle: Path, tmp_path: Path) -> None:
    manifest = load_bundle(edge_bundle)
    edge_model = ModelRef(manifest.model_id, manifest.version)
    path = tmp_path / "policy.json"
    rng = random.Random(16)
    for _ in range(KILLS):
        kill_while_updating(["policy", str(path), edge_model.id, edge_model.version], rng)
        restarted = PolicyKeeper(edge_model, COHORT, path)  # what the agent does when it starts
        version = restarted.received_version
        assert version.startswith("u"), f"the saved policy did not load: {version!r}"
        number = int(version[1:])
        assert restarted.current.shadow_rate == min(number, 999) / 1000.0  # its own content, not a mix
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "policy.json"]
    assert len(leftovers) <= 1, f"temporary files pile up: {leftovers}"  # the last kill's, until the next write


def test_a_device_killed_while_updating_a_probe_keeps_a_bundle_that_loads(edge_bundle: Path,
                                                                         tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(edge_bundle, bundle)
    rng = random.Random(16)
    for _ in range(KILLS):
        kill_while_updating(["probe", str(bundle)], rng)
        manifest = load_bundle(bundle)  # verifies every file's sha256, as the agent does when it starts
        weight, _ = read_probe(bundle, manifest)
        column = weight[:, manifest.probe.outputs.index("tbg")]
        assert any(np.all(column == value) for value in PROBE_WEIGHTS), "the probe is neither the old nor the new"
    EdgeModel(bundle).close()  # and the agent runs on it


def test_a_device_killed_while_applying_probe_and_policy_restarts_on_a_whole_pair(edge_bundle: Path,
                                                                                  tmp_path: Path) -> None:
    bundle, state = tmp_path / "bundle", tmp_path / "state"
    shutil.copytree(edge_bundle, bundle)
    state.mkdir()
    rng = random.Random(16)
    for _ in range(KILLS):
        kill_while_updating(["pair", str(bundle), str(state)], rng)
        model, keeper = pair_keeper(bundle, state)  # what the agent does when it starts
        try:
            policy = keeper.current
            assert policy.policy_version.startswith("u") and policy.probe is not None
            manifest = model.engine.manifest
            assert delivered_version(manifest) == policy.probe_version  # the pair, never a mix
            weight, _ = read_probe(bundle, manifest)
            np.testing.assert_array_equal(weight[:, manifest.probe.outputs.index("tbg")], policy.probe.weight)
        finally:
            model.close()


def test_a_device_killed_while_replacing_its_bundle_keeps_one_that_loads(tmp_path: Path) -> None:
    bundle = tmp_path / "tiny"
    rng = random.Random(16)
    versions = set()
    for _ in range(KILLS):
        kill_while_updating(["bundle", str(bundle)], rng)
        versions.add(load_bundle(bundle).version)  # the old bundle or the new one, verified
        leftovers = [p.name for p in tmp_path.iterdir() if p.name != bundle.name]
        assert len(leftovers) <= 1, f"half-written bundles pile up: {leftovers}"  # the last kill's, if any
    assert len(versions) == len(BUNDLE_SEEDS)  # both were written, and each loaded after some kill
    EdgeModel(bundle).close()
