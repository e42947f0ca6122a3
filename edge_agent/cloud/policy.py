"""The routing policy on the device: held, validated, saved, and followed from the cloud.

:class:`PolicyKeeper` holds the policy routing reads: the last good one received, else the built-in
:func:`confroute.routing.default_policy`. Readers take ``keeper.current`` (one reference, swapped
atomically). A received policy is applied only if it passes, in order:

1. the checks of the ``Policy`` domain object (thresholds in [0, 1] and not NaN, a known mode, valid
   knots...), run when it is built: by ``Policy.from_pb`` for one from the wire, so a policy built
   in-process is valid already;
2. the signature hook ``verify_signature``: :func:`signature_check` builds it from the trusted public keys
   (``confroute.signing.PolicyVerifier``: a trusted key id, an Ed25519 signature over the canonical bytes);
   with no keys configured it is :func:`accept_unsigned` (development only, logged as a warning);
3. scope: the edge model (id and build) of this device's bundle, and its cohort;
4. freshness. Version strings are opaque labels (``v7``, ``20250101T120000Z``), not ordered; policies
   are ordered by ``issued_at``, set by the cloud when it issues one. A policy must be issued strictly
   after the one held. The held version delivered again with the same content is a no-op (a watch
   sends the current policy first); with other content it is rejected. A rollback is a new issue of
   the old content (a new ``issued_at``).

5. its probe (with an installer, :mod:`edge_agent.cloud.probe_install`): the probe the policy names is
   verified (signature, the bundle's build) and staged into the bundle with a model loaded on it, while
   the current pair keeps answering; then policy and model are swapped together under the lock readers
   take (:meth:`PolicyKeeper.snapshot`), so a query routes with an old pair or a new one, never a mix. A
   refused probe refuses the policy.

A rejected policy is logged with its reason and the last good one stays. An applied policy is saved
(:mod:`edge_agent.cloud.policy_file`) and loaded at the next start, so a device restarted offline routes
as it did and an older policy replayed after the restart is still stale; the saved policy passes the
same signature and scope checks when loaded (a key no longer trusted: back to the built-in default).
:class:`edge_agent.cloud.watcher.PolicyWatcher` follows ``WatchPolicy`` in a thread and offers each policy
it receives to the keeper.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from confroute.contract import ModelRef, Policy
from confroute.errors import InvalidInput, InvalidPolicy
from confroute.routing import default_policy
from confroute.signing import PolicyVerifier, ProbeVerifier, load_trusted_keys
from confroute.v1 import fleet_pb2
from edge_agent.cloud.policy_file import load_policy, save_policy
from edge_agent.cloud.probe_install import ProbeCheck, ProbeInstaller, accept_unsigned_probe

logger = logging.getLogger(__name__)

SignatureCheck = Callable[[Policy], None]  # raises InvalidPolicy when the signature is bad or missing
T = TypeVar("T")


def accept_unsigned(policy: Policy) -> None:
    """The signature hook of a device with no trusted keys: every policy passes (development only)."""


def signature_check(trusted_key_paths: Sequence[Path]) -> SignatureCheck:
    """A ``PolicyVerifier`` over the public keys in ``trusted_key_paths`` (files or folders of ``*.pub``);
    none given: :func:`accept_unsigned`, with a warning. Unreadable or empty key sets are InvalidInput."""
    if not trusted_key_paths:
        logger.warning("no trusted policy keys configured: unsigned policies will be applied")
        return accept_unsigned
    verifier = PolicyVerifier(load_trusted_keys(trusted_key_paths))
    logger.info("policies must be signed by one of %s", ", ".join(verifier.key_ids))
    return verifier


def probe_signature_check(trusted_key_paths: Sequence[Path]) -> ProbeCheck:
    """A ``ProbeVerifier`` over the keys policies are checked with; none given: probes are not checked."""
    if not trusted_key_paths:
        return accept_unsigned_probe
    return ProbeVerifier(load_trusted_keys(trusted_key_paths))


@dataclass(frozen=True)
class Verdict:
    """What became of an offered policy: applied, or not and why."""

    applied: bool
    reason: str = ""


class PolicyKeeper:
    """The device's current policy for one edge model build and cohort; safe to share between threads."""

    def __init__(
        self,
        edge_model: ModelRef,
        cohort: str,
        path: Path | None = None,
        *,
        verify_signature: SignatureCheck = accept_unsigned,
        probes: ProbeInstaller[Any] | None = None,
    ) -> None:
        self.edge_model = edge_model
        self.cohort = cohort
        self._path = path
        self._verify = verify_signature
        self._probes = probes
        self._lock = threading.Lock()  # readers' snapshot and the swap
        self._offering = threading.Lock()  # one offer at a time (staging a probe takes a while, outside _lock)
        self._default = default_policy(edge_model, cohort)
        self._received: Policy | None = self._start()

    @property
    def current(self) -> Policy:
        """The policy to route with now."""
        received = self._received
        return self._default if received is None else received

    def snapshot(self, read: Callable[[], T]) -> tuple[Policy, T]:
        """The current policy and ``read()`` (the model it goes with) taken together: a swap of both
        happens entirely before or after."""
        with self._lock:
            return self.current, read()

    @property
    def received_version(self) -> str:
        """The version of the last good policy received ("" while on the built-in default)."""
        received = self._received
        return "" if received is None else received.policy_version

    def offer(self, policy: Policy) -> Verdict:
        """Applies ``policy`` if it passes every check (see the module docstring)."""
        return self._offer(policy)

    def offer_pb(self, pb: fleet_pb2.Policy) -> Verdict:
        """Applies a policy received from the wire if it passes every check."""
        try:
            policy = Policy.from_pb(pb)
        except InvalidInput as exc:
            return self._reject(pb.policy_version or "(no version)", str(exc))
        return self._offer(policy)

    def _offer(self, policy: Policy) -> Verdict:
        with self._offering:
            try:
                self._check_scope(policy)
                if not self._is_new(policy):
                    logger.debug("policy %s is already current", policy.policy_version)
                    return Verdict(False, "already current")
                staged = self._probes.stage(policy) if self._probes is not None else None
            except InvalidInput as exc:
                return self._reject(policy.policy_version, str(exc))
            self._save(policy)
            with self._lock:
                self._received = policy
                if staged is not None and self._probes is not None:
                    self._probes.commit(staged)
        logger.info(
            "policy %s applied: mode=%s thresholds=%s shadow_rate=%s probe=%s",
            policy.policy_version, policy.mode.value, policy.thresholds, policy.shadow_rate,
            policy.probe_version or "shipped",
        )
        return Verdict(True)

    def _check_scope(self, policy: Policy) -> None:
        """Signature, edge model and cohort; raises InvalidPolicy."""
        self._verify(policy)
        if policy.edge_model != self.edge_model:
            theirs, ours = policy.edge_model, self.edge_model
            raise InvalidPolicy(
                f"it is for edge model {theirs.id} {theirs.version}; this device runs {ours.id} {ours.version}",
                field="edge_model",
            )
        if policy.cohort != self.cohort:
            raise InvalidPolicy(f"it is for cohort {policy.cohort!r}, this device's is {self.cohort!r}", field="cohort")

    def _is_new(self, policy: Policy) -> bool:
        """False for the held policy delivered again; raises InvalidPolicy for a stale or conflicting one."""
        held = self._received
        if held is None:
            return True
        if policy.policy_version == held.policy_version:
            if policy == held:
                return False
            raise InvalidPolicy("the held version came back with other content", field="policy_version")
        if policy.issued_at <= held.issued_at:
            raise InvalidPolicy(
                f"it is stale: issued {policy.issued_at.isoformat()}, not after the held "
                f"{held.policy_version} ({held.issued_at.isoformat()})",
                field="issued_at",
            )
        return True

    def _reject(self, version: str, reason: str) -> Verdict:
        logger.warning("policy %s rejected: %s; keeping %s", version, reason, self.current.policy_version)
        return Verdict(False, reason)

    def _save(self, policy: Policy) -> None:
        if self._path is None:
            return
        try:
            save_policy(self._path, policy)
        except OSError as exc:
            logger.warning("policy %s applies but cannot be saved to %s: %s", policy.policy_version, self._path, exc)

    def _start(self) -> Policy | None:
        """The saved policy (if it still fits), with the bundle holding the probe it names; else None, with the
        bundle's own probe back in place when a delivered one was left in it."""
        saved = self._load()
        if self._probes is None:
            return saved
        for policy in (saved, self._default) if saved is not None else (self._default,):
            try:
                self._probes.commit(self._probes.stage(policy))
                return None if policy is self._default else policy
            except InvalidInput as exc:
                logger.warning("the probe of policy %s cannot be put back: %s", policy.policy_version, exc)
        return None

    def _load(self) -> Policy | None:
        """The saved policy, if there is one that still fits this device."""
        if self._path is None or not self._path.exists():
            return None
        try:
            policy = load_policy(self._path)
            self._check_scope(policy)
        except (OSError, InvalidInput) as exc:
            logger.warning("ignoring the saved policy %s: %s; routing with the built-in default", self._path, exc)
            return None
        logger.info("routing with saved policy %s from %s", policy.policy_version, self._path)
        return policy
