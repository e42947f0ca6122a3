"""Child process for the kill -9 test: puts records and prints each id once its put() returned.

Usage: python -m tests.edge_agent.outbox.putter QUEUE_FILE PREFIX COUNT
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge_agent.outbox import OutcomeQueue, QueueConfig
from tests.factories import outcome


def main(path: str, prefix: str, count: int) -> None:
    with OutcomeQueue(QueueConfig(Path(path))) as queue:
        for i in range(count):
            queue.put(outcome(f"{prefix}-{i}"))
            print(f"{prefix}-{i}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
