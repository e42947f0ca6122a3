"""Publishing a bundle for a cohort: copied into the library, described (every file's size and sha256),
signed with the policy signing key, then pointed to. Devices see it only once the pointer is set, after the
bytes are complete on disk."""

from __future__ import annotations

import time
from pathlib import Path

from cloud_service.bundles.library import BundleLibrary
from cloud_service.bundles.pointers import ReleasePointers
from confroute.contract.bundle_release import BundleRelease
from confroute.signing.bundle_signature import sign_release
from confroute.signing.keys import SigningKey


async def publish_bundle(folder: Path, cohort: str, library: BundleLibrary, pointers: ReleasePointers,
                         key: SigningKey, *, now_us: int | None = None) -> BundleRelease:
    """The signed release of the bundle at ``folder``, now ``cohort``'s current one."""
    stored = library.add(folder)
    issued = time.time_ns() // 1000 if now_us is None else now_us
    release = sign_release(BundleRelease(cohort=cohort, bundle_version=stored.manifest.version,
                                         model_id=stored.manifest.model_id, files=stored.files,
                                         issued_at_us=issued), key)
    await pointers.set(release)
    return release
