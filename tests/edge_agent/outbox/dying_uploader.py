"""Child process for the kill -9 test: uploads one batch, then hangs before applying the ack.

The cloud has stored the batch when "stored" is printed; the parent then kills this process, so the
records are still queued on the device although the cloud holds them.

Usage: python -m tests.edge_agent.outbox.dying_uploader QUEUE_FILE PORT
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import grpc

from confroute.contract import OutcomeAck, OutcomeBatch
from edge_agent.outbox import GrpcOutcomeSink, OutcomeQueue, QueueConfig, Uploader


class HangsAfterTheCloudStored:
    def __init__(self, inner: GrpcOutcomeSink) -> None:
        self.inner = inner

    def upload(self, batch: OutcomeBatch) -> OutcomeAck:
        self.inner.upload(batch)
        print("stored", flush=True)
        threading.Event().wait()  # until SIGKILL
        raise AssertionError("unreachable")


def main(path: str, port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, OutcomeQueue(QueueConfig(Path(path))) as queue:
        Uploader(queue, HangsAfterTheCloudStored(GrpcOutcomeSink(channel, deadline_s=10.0))).run_once()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
