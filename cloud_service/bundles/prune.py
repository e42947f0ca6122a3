"""Pruning the bundle folder: versions no cohort's release points at are deleted, but for the newest ``keep``
of them (by when they were last published) and any published within the last ``grace_s`` seconds.

Live versions (the current release of some cohort) are never deleted. The grace covers a publish in flight:
its bytes are copied before its pointer is set, so for a moment a version held is not yet pointed at. The held
versions are listed before the pointers are read, so a version whose pointer is set meanwhile is live here, and
each version is looked at again just before it is deleted, so one published again meanwhile (its folder touched)
is spared. What remains is a publish of a held version that touches its folder after that last look and sets its
pointer after the deletion: run prune apart from publishes of old versions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cloud_service.bundles.library import BundleLibrary
from cloud_service.bundles.pointers import ReleasePointers
from confroute.errors import InvalidInput

DEFAULT_GRACE_S = 600.0


@dataclass(frozen=True)
class PrunePlan:
    """What a prune deletes and keeps, each sorted."""

    live: tuple[str, ...]
    kept: tuple[str, ...]  # unreferenced, but among the newest ``keep`` or within the grace
    deleted: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        return {"live": list(self.live), "kept": list(self.kept), "deleted": list(self.deleted)}


def plan_prune(added_at: dict[str, float], live: set[str], keep: int, *, now: float,
               grace_s: float = DEFAULT_GRACE_S) -> PrunePlan:
    """The plan for versions held (``added_at``: version -> when last published) given the ``live`` ones."""
    if keep < 0:
        raise InvalidInput(f"--keep must be 0 or more, not {keep}", field="keep")
    unreferenced = sorted((v for v in added_at if v not in live), key=lambda v: (added_at[v], v), reverse=True)
    doomed = [v for v in unreferenced[keep:] if now - added_at[v] >= grace_s]
    kept = [v for v in unreferenced if v not in doomed]
    return PrunePlan(tuple(sorted(live & added_at.keys())), tuple(sorted(kept)), tuple(sorted(doomed)))


async def prune_bundles(library: BundleLibrary, pointers: ReleasePointers, keep: int, *, dry_run: bool = False,
                        now: float | None = None, grace_s: float = DEFAULT_GRACE_S) -> PrunePlan:
    """Deletes what :func:`plan_prune` says (nothing with ``dry_run``) and returns the plan."""
    clock = time.time() if now is None else now
    added_at = {version: library.added_at(version) for version in library.versions()}
    live = {release.bundle_version for release in (await pointers.all()).values()}
    plan = plan_prune(added_at, live, keep, now=clock, grace_s=grace_s)
    if dry_run:
        return plan
    spared = [v for v in plan.deleted if clock - library.added_at(v) < grace_s]  # published again meanwhile
    for version in plan.deleted:
        if version not in spared:
            library.remove(version)
    return PrunePlan(plan.live, tuple(sorted((*plan.kept, *spared))),
                     tuple(v for v in plan.deleted if v not in spared))
