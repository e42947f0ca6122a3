"""The router probe a policy names, installed on the device together with the policy (both or neither).

A policy's ``probe_version`` names the probe its thresholds were calibrated for ("" : the probe the bundle
shipped with) and the policy carries that probe. :class:`ProbeInstaller` is the keeper's hook
(:class:`edge_agent.cloud.policy.PolicyKeeper`): :meth:`ProbeInstaller.stage` makes the bundle hold the probe
a policy wants and loads a model on it, without touching the model that answers now; the keeper then swaps
policy and model in one step between two requests, or, when anything fails, puts the bundle's previous
probe back and refuses the policy with the reason (the previous pair keeps working).

A delivered probe passes, in order: the signature check (``confroute.signing.ProbeVerifier``, the keys
policies are checked with; none configured: accepted, development only), its build (the probe's
``edge_model_version`` must be this bundle's ``build_version``: hidden states of another build are not
what it was fitted on), and the bundle's own checks (``write_probe``: width, finite weights). Before the
first probe replaces the bundle's own, the shipped probe is saved beside the policy
(``bundle-probe.<build version>.json`` in the state folder: per build, so a bundle replaced by another
build never gets the old build's probe back), and a policy naming no probe (a rollback to before the
first probe) restores it.
Every file is replaced atomically (``write_probe`` and ``restore_probe`` are crash-safe), and at start the
keeper stages its saved policy again: a device killed between writing a probe and saving its policy
comes back with the pair the saved policy names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from confroute.bundle.manifest import Manifest
from confroute.bundle.probe import ProbeSnapshot, restore_probe, snapshot_probe, write_probe
from confroute.bundle.store import load_bundle
from confroute.contract import Policy
from confroute.contract.router_probe import RouterProbe
from confroute.errors import BundleError, ConfrouteError, InvalidPolicy, ProbeShapeMismatch
from edge_agent.cloud.policy_file import write_atomically

logger = logging.getLogger(__name__)

TBG = "tbg"
VERSION_KEY = "router_probe_version"  # in the bundle's tbg provenance: which delivered probe it holds
ProbeCheck = Callable[[RouterProbe], None]  # raises InvalidPolicy when a probe's signature is bad or missing
M = TypeVar("M")


def accept_unsigned_probe(probe: RouterProbe) -> None:
    """The probe signature hook of a device with no trusted keys (development only)."""


def delivered_version(manifest: Manifest) -> str:
    """The version of the delivered probe a bundle's manifest says it holds ("": the one it shipped with)."""
    return str(manifest.probe.trained.get(TBG, {}).get(VERSION_KEY, ""))


@dataclass(frozen=True)
class Staged(Generic[M]):
    """A model loaded on the probe a policy wants (None: the model that runs now already has it)."""

    model: M | None
    probe_version: str


class ProbeInstaller(Generic[M]):
    """Stages the probe a policy names into ``bundle`` and loads a model on it with ``load``."""

    def __init__(self, bundle: Path, build_version: str, load: Callable[[], M], swap: Callable[[M], None],
                 running: Callable[[], Manifest], state_dir: Path, *,
                 verify: ProbeCheck = accept_unsigned_probe) -> None:
        self._bundle = bundle
        self._build_version = build_version
        self._load = load
        self._swap = swap
        self._running = running
        self._snapshot_path = state_dir / f"bundle-probe.{build_version}.json"
        self._verify = verify

    def installed(self) -> str:
        """The version of the delivered probe the bundle on disk holds ("": the one it shipped with)."""
        return delivered_version(load_bundle(self._bundle, verify=False))

    def stage(self, policy: Policy) -> Staged[M]:
        """Makes the bundle hold the probe ``policy`` names and loads a model on it; InvalidPolicy (the bundle's
        previous probe back in place) when the probe is refused or cannot be installed."""
        wanted = policy.probe_version
        if wanted == delivered_version(self._running()):
            return Staged(None, wanted)
        self._require_running_build()
        previous = snapshot_probe(self._bundle)
        try:
            if wanted != self.installed():
                self._write(policy)
            return Staged(self._load(), wanted)
        except (ConfrouteError, OSError) as exc:
            self._put_back(previous)
            if isinstance(exc, InvalidPolicy):
                raise
            name = wanted or "shipped with the bundle"
            raise InvalidPolicy(f"its probe ({name}) cannot be installed: {exc}", field="probe") from exc
        except BaseException:
            self._put_back(previous)
            raise

    def commit(self, staged: Staged[M]) -> None:
        """Puts a staged model to work (the keeper calls it while it swaps the policy)."""
        if staged.model is not None:
            self._swap(staged.model)

    def check(self, probe: RouterProbe) -> None:
        """Signature and build of a delivered probe; raises InvalidPolicy."""
        self._verify(probe)
        if probe.edge_model_version != self._build_version:
            raise InvalidPolicy(f"its probe {probe.version} is for build {probe.edge_model_version}; this bundle "
                                f"is build {self._build_version}", field="probe.edge_model_version")

    def _write(self, policy: Policy) -> None:
        if not policy.probe_version:
            restore_probe(self._bundle, self._shipped())
            return
        probe = policy.probe
        if probe is None:
            raise InvalidPolicy(f"it names probe {policy.probe_version} without carrying it", field="probe")
        self.check(probe)
        self._save_shipped()
        provenance = {**probe.provenance, VERSION_KEY: probe.version, "cohort": probe.cohort,
                      "key_id": probe.key_id, "layers": list(probe.layers)}
        try:
            write_probe(self._bundle, TBG, probe.weight, probe.bias, provenance)
        except ProbeShapeMismatch as exc:
            raise InvalidPolicy(f"its probe {probe.version} does not fit this bundle: {exc}", field="probe") from exc

    def _require_running_build(self) -> None:
        """The bundle on disk must be the build this agent runs: ``edge-agent bundle update`` may have swapped
        another one in, which this agent serves only after a restart (its policies, outcomes and saved probe
        belong to the build it runs)."""
        on_disk = load_bundle(self._bundle, verify=False).build_version
        if on_disk != self._build_version:
            raise InvalidPolicy(f"the bundle on disk is build {on_disk}, this agent runs build {self._build_version}: "
                                "restart the agent to serve the new bundle", field="probe")

    def _save_shipped(self) -> None:
        """Saves the bundle's own probe before a delivered one replaces it (again after a new release of the
        same build, whose own probe may differ: while the bundle holds its own probe, that is the one saved)."""
        if self.installed():
            return
        write_atomically(self._snapshot_path, snapshot_probe(self._bundle).to_json().encode("utf-8"))

    def _shipped(self) -> ProbeSnapshot:
        try:
            return ProbeSnapshot.from_json(self._snapshot_path.read_bytes())
        except OSError as exc:
            raise InvalidPolicy(f"the bundle's own probe was not saved ({exc})", field="probe_version") from exc

    def _put_back(self, previous: ProbeSnapshot) -> None:
        try:
            restore_probe(self._bundle, previous)
        except (BundleError, OSError) as exc:  # the bundle still loads (writes are atomic)
            logger.error("could not put the previous probe back into %s: %s", self._bundle, exc)
