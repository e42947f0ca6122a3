"""BundleService: a cohort's current signed release, then its files from any offset in chunks.

A device reads only its own cohort's release, as itself (:func:`~cloud_service.identity.access.require_bundle_read`),
and only files of the release that is current now: after a new publish, a download of the old one ends with
NOT_FOUND and the device starts over with the new release. Files are read from the library with ``pread``
off the event loop, one chunk at a time, so a slow device holds one chunk in memory, not a file. A device
has at most ``MAX_STREAMS_PER_DEVICE`` file streams open on a replica at once; one more is RESOURCE_EXHAUSTED
(the updater downloads one file at a time, so two leave room for a retry whose dropped stream the service has
not noticed yet).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import NoReturn

import grpc

from cloud_service.bundles.pointers import BundleCatalog
from cloud_service.identity.access import require_bundle_read
from cloud_service.identity.context import current_principal
from cloud_service.server.limits import PerKeySlots
from confroute.contract.bundle_release import BundleRelease
from confroute.errors import InvalidInput
from confroute.v1 import bundle_pb2, bundle_pb2_grpc

DEFAULT_CHUNK_BYTES = 1 << 20
MIN_CHUNK_BYTES = 4 << 10
MAX_CHUNK_BYTES = 1 << 20  # under gRPC's default 4 MiB a client receives
MAX_STREAMS_PER_DEVICE = 2


def chunk_bytes(wanted: int) -> int:
    """The chunk size for a request's ``max_chunk_bytes`` (0: the default), within the service's bounds."""
    return min(max(wanted or DEFAULT_CHUNK_BYTES, MIN_CHUNK_BYTES), MAX_CHUNK_BYTES)


class BundleServicer(bundle_pb2_grpc.BundleServiceServicer):  # type: ignore[misc]
    """Serves the catalog's releases and files."""

    def __init__(self, catalog: BundleCatalog, max_streams_per_device: int = MAX_STREAMS_PER_DEVICE) -> None:
        self._catalog = catalog
        self._streams = PerKeySlots(max_streams_per_device, "bundle file streams")

    async def GetBundleRelease(  # noqa: N802 -- the name is the RPC's
        self, request: bundle_pb2.GetBundleReleaseRequest, context: grpc.aio.ServicerContext
    ) -> bundle_pb2.GetBundleReleaseResponse:
        """The cohort's current release, or NOT_FOUND when none was published."""
        release = await self._current(request.device_id, request.cohort, context)
        return bundle_pb2.GetBundleReleaseResponse(release=release.to_pb())

    async def ReadBundleFile(  # noqa: N802
        self, request: bundle_pb2.ReadBundleFileRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bundle_pb2.ReadBundleFileResponse]:
        """The file from ``offset`` to its end, in chunks of at most ``max_chunk_bytes``."""
        release = await self._current(request.device_id, request.cohort, context)
        if release.bundle_version != request.bundle_version:
            await _not_found(context, f"bundle {request.bundle_version!r} is not cohort {request.cohort!r}'s "
                                      f"current release ({release.bundle_version})")
        entry = release.file(request.name)
        if entry is None:
            await _not_found(context, f"bundle {release.bundle_version} has no file {request.name!r}")
        if request.offset > entry.size:
            raise InvalidInput(f"offset {request.offset} is past the end of {entry.name} ({entry.size} bytes)",
                               field="offset")
        path = self._catalog.library.path(release.bundle_version, entry.name)
        size = chunk_bytes(request.max_chunk_bytes)
        with self._streams.slot(f"device {request.device_id!r}"):
            try:
                descriptor = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # pruned since the release was read
                await _not_found(context, f"bundle {release.bundle_version} is no longer held; read the release again")
            try:
                offset = request.offset
                while offset < entry.size:
                    data = await asyncio.to_thread(os.pread, descriptor, min(size, entry.size - offset), offset)
                    if not data:
                        raise RuntimeError(f"{path} is shorter than its release says")  # the library was altered
                    yield bundle_pb2.ReadBundleFileResponse(offset=offset, data=data)
                    offset += len(data)
            finally:
                os.close(descriptor)

    async def _current(self, device_id: str, cohort: str, context: grpc.aio.ServicerContext) -> BundleRelease:
        require_bundle_read(current_principal(), device_id, cohort)
        release = await self._catalog.pointers.current(cohort)
        if release is None:
            await _not_found(context, f"no bundle published for cohort {cohort!r}")
        return release


async def _not_found(context: grpc.aio.ServicerContext, message: str) -> NoReturn:
    await context.abort(grpc.StatusCode.NOT_FOUND, message)
    raise AssertionError("context.abort returned")  # pragma: no cover -- abort always raises
