"""Whole-bundle delivery, the device side (docs/bundle-delivery.md): ``edge-agent bundle update|rollback|status``.

* :mod:`.source` - where releases and file bytes come from (``BundleService`` over gRPC, behind a small interface).
* :mod:`.disk` - the free-space probe and the up-front refusal when a download would not fit.
* :mod:`.download` - the staging folder under the state folder: files resumed by size, every sha256 checked.
* :mod:`.update` - signature, download, checks, the atomic swap that keeps the previous bundle; rollback.
* :mod:`.command` - the command line.
"""

from edge_agent.bundles.update import BundleUpdater, UpdateResult, rollback

__all__ = ["BundleUpdater", "UpdateResult", "rollback"]
