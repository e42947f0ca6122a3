"""Where a device gets bundle releases and their bytes: ``BundleService`` over the agent's cloud channel
(:class:`GrpcBundleSource`), behind the small :class:`BundleSource` interface that tests wrap (a source that
stops after N chunks is a dropped connection). gRPC errors become confroute errors here, through the device's
one status table (:mod:`edge_agent.cloud.status`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import grpc

from confroute.contract.bundle_release import BundleRelease
from confroute.errors import BundleCorrupt
from confroute.v1 import bundle_pb2, bundle_pb2_grpc
from edge_agent.cloud.status import translate

Metadata = tuple[tuple[str, str], ...]
RELEASE_DEADLINE_S = 10.0
FILE_DEADLINE_S = 900.0  # one file's stream; a slower link resumes where it stopped on the next try


class BundleSource(Protocol):
    """A cohort's current release, and a file of it from an offset, chunk by chunk."""

    def release(self) -> BundleRelease: ...

    def read(self, release: BundleRelease, name: str, offset: int) -> Iterator[bytes]: ...


class GrpcBundleSource:
    """``BundleService`` on ``channel``, as device ``device_id`` of ``cohort``."""

    def __init__(self, channel: grpc.Channel, metadata: Metadata, device_id: str, cohort: str,
                 chunk_bytes: int = 1 << 20) -> None:
        self._stub: Any = bundle_pb2_grpc.BundleServiceStub(channel)  # type: ignore[no-untyped-call]
        self._metadata = metadata
        self._device_id = device_id
        self._cohort = cohort
        self._chunk_bytes = chunk_bytes

    def release(self) -> BundleRelease:
        request = bundle_pb2.GetBundleReleaseRequest(device_id=self._device_id, cohort=self._cohort)
        try:
            response = self._stub.GetBundleRelease(request, timeout=RELEASE_DEADLINE_S, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise translate(exc, "reading the cohort's bundle release") from exc
        return BundleRelease.from_pb(response.release)

    def read(self, release: BundleRelease, name: str, offset: int) -> Iterator[bytes]:
        request = bundle_pb2.ReadBundleFileRequest(
            device_id=self._device_id, cohort=self._cohort, bundle_version=release.bundle_version, name=name,
            offset=offset, max_chunk_bytes=self._chunk_bytes)
        expected = offset
        responses = self._stub.ReadBundleFile(request, timeout=FILE_DEADLINE_S, metadata=self._metadata)
        try:
            for chunk in responses:
                if chunk.offset != expected:
                    raise BundleCorrupt(f"{name}: the service sent bytes at {chunk.offset}, expected {expected}")
                expected += len(chunk.data)
                yield chunk.data
        except grpc.RpcError as exc:
            raise translate(exc, f"reading {name} of bundle {release.bundle_version}") from exc
        finally:
            responses.cancel()  # a stream left early (refused bytes, a closed generator) ends at once
