"""Store-and-forward of outcome records: a durable local queue, and the uploader that drains it.

Every outcome goes first to :class:`OutcomeQueue` (SQLite, WAL), then up in batches through an
:class:`OutcomeSink` (:class:`GrpcOutcomeSink` in production); only acknowledged records are deleted.
"""

from edge_agent.outbox.grpc_sink import GrpcOutcomeSink
from edge_agent.outbox.queue import DeadLetter, OutcomeQueue, QueueConfig, QueuedOutcome, QueueStats
from edge_agent.outbox.uploader import OutcomeSink, Uploader, UploaderConfig, UploadReport

__all__ = [
    "DeadLetter",
    "GrpcOutcomeSink",
    "OutcomeQueue",
    "OutcomeSink",
    "QueueConfig",
    "QueueStats",
    "QueuedOutcome",
    "UploadReport",
    "Uploader",
    "UploaderConfig",
]
