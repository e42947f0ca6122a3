"""Whole-bundle delivery, the cloud side (docs/bundle-delivery.md).

* :mod:`.library` - bundle folders on the service's file system (``--bundle-dir``), one per content version.
* :mod:`.pointers` - each cohort's current signed release, in Redis.
* :mod:`.publish` - an operator publishes a bundle folder for a cohort (copied, described, signed, pointed to).
* :mod:`.servicer` - ``BundleService``: the release, then the files in chunks, to the cohort's devices.
* :mod:`.prune` - deleting the versions no cohort points at (``bundle prune``).
* :mod:`.command` - ``cloud-service bundle publish|list|prune``.
"""

from cloud_service.bundles.library import BundleLibrary
from cloud_service.bundles.pointers import ReleasePointers, open_bundle_catalog

__all__ = ["BundleLibrary", "ReleasePointers", "open_bundle_catalog"]
