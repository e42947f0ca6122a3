"""A device process for ``tests/test_bundle_delivery.py`` to SIGKILL mid-download: it updates its bundle from
the service at ``argv[1]`` (trusting the key ``argv[2]``) into ``argv[3]`` with its state in ``argv[4]``,
taking each 4 KiB chunk 5 ms apart so that a kill finds it half-way.

    python -m tests.bundle_slow_device HOST:PORT KEY.pub BUNDLE STATE COHORT
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from confroute.contract.bundle_release import BundleRelease
from confroute.signing.bundle_signature import ReleaseVerifier
from confroute.signing.keys import load_trusted_keys
from edge_agent.bundles import BundleUpdater
from edge_agent.bundles.source import GrpcBundleSource


class Slow:
    def __init__(self, inner: GrpcBundleSource) -> None:
        self.inner = inner

    def release(self) -> BundleRelease:
        return self.inner.release()

    def read(self, release: BundleRelease, name: str, offset: int) -> Iterator[bytes]:
        for chunk in self.inner.read(release, name, offset):
            time.sleep(0.005)
            yield chunk


def main(argv: list[str]) -> int:
    target, key, bundle, state, cohort = argv
    with grpc.insecure_channel(target) as channel:
        source = Slow(GrpcBundleSource(channel, (), "slow-device", cohort, chunk_bytes=4096))
        check = ReleaseVerifier(load_trusted_keys([Path(key)]))
        print(BundleUpdater(Path(bundle), Path(state), source, check, cohort).update().outcome, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
