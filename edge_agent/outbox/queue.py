"""``OutcomeQueue``: the device's durable store-and-forward queue of outcome records (SQLite, WAL).

Durability: ``put()`` returns only after its transaction has committed to the write-ahead log.
With ``synchronous="NORMAL"`` (the default) the WAL is fsynced only at checkpoints: a returned
``put()`` survives a kill -9 or any other process crash (the commit is in the OS page cache, which
the kernel writes out), but a power cut or kernel crash may roll back the commits of the last few
seconds (the file itself is never corrupted). With ``"FULL"`` the WAL is fsynced on every commit, so
a returned ``put()`` also survives a power cut. NORMAL is the default because the agent promises
kill -9 safety, and an fsync per query costs 10-40x more (milliseconds on a VM disk or eMMC) and
wears flash; choose FULL where losing the last seconds of outcomes to a power cut is not acceptable.

Idempotency: records are keyed by ``query_id``; putting the same id twice stores it once.

Bound and eviction: at most ``max_records`` records and ``max_bytes`` payload bytes. A put that would
exceed either evicts the *oldest* records first, whatever their kind, and counts them
(``evicted_total``). Eviction is content-blind on purpose: dropping e.g. non-shadow records first
would skew the uploaded log by decision, and the cloud's propensity-weighted recalibration would be
biased; dropping by age keeps the survivors a fair sample, and the freshest data is the most useful.

A write the file cannot take (the disk is full, an I/O error) is rolled back and raised as ``Unavailable``;
what was committed before stays, and writes succeed again once there is room.

Records leave the queue only through ``ack()`` (the cloud stored them, or already had them),
``dead_letter()`` (the cloud will never accept them) or eviction. One connection, guarded by a lock,
serves every thread: SQLite serializes writers anyway, and a put is a fraction of a millisecond.

Feedback: a put also remembers the record (in the same transaction) among the last ``remember`` answered
queries, uploaded or not, so that user feedback can name it later (:meth:`answered`, :meth:`mark_rated`;
:mod:`edge_agent.outbox.feedback`). The records hold no text; ``remember=0`` keeps none.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from google.protobuf.message import DecodeError

from confroute.contract import OutcomeRecord, RejectedOutcome
from confroute.errors import InvalidInput, Unavailable
from confroute.v1 import outcomes_pb2
from edge_agent.outbox import _schema

logger = logging.getLogger(__name__)

Synchronous = Literal["NORMAL", "FULL"]


@dataclass(frozen=True)
class QueueConfig:
    """Where the queue lives, how big it may grow, and how many records an upload batch holds."""

    path: Path
    max_records: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    batch_size: int = 200
    synchronous: Synchronous = "NORMAL"
    remember: int = 10_000

    def __post_init__(self) -> None:
        if self.remember < 0:
            raise InvalidInput(f"remember must be >= 0, got {self.remember}", field="remember")
        for name in ("max_records", "max_bytes", "batch_size"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"{name} must be >= 1, got {getattr(self, name)}", field=name)
        if self.synchronous not in ("NORMAL", "FULL"):
            raise InvalidInput(f"synchronous must be NORMAL or FULL, got {self.synchronous!r}", field="synchronous")


@dataclass(frozen=True)
class QueuedOutcome:
    """One waiting record, as stored: the payload is decoded only when it is about to be sent."""

    query_id: str
    payload: bytes
    enqueued_at: float
    attempts: int

    def record(self) -> OutcomeRecord:
        """The domain record, or InvalidInput when the payload does not decode or validate."""
        pb = outcomes_pb2.OutcomeRecord()
        try:
            pb.ParseFromString(self.payload)
        except DecodeError as exc:
            raise InvalidInput(f"stored payload of {self.query_id} does not decode: {exc}", field="payload") from exc
        return OutcomeRecord.from_pb(pb)


@dataclass(frozen=True)
class DeadLetter:
    """A record the cloud refused (or that could not be decoded), kept for inspection, never resent."""

    query_id: str
    field: str
    reason: str
    dead_at: float
    payload: bytes


@dataclass(frozen=True)
class QueueStats:
    """What is waiting now, and how many records ever left the queue, by way."""

    queued: int
    queued_bytes: int
    evicted_total: int
    uploaded_total: int
    duplicates_total: int
    dead_lettered_total: int


class OutcomeQueue:
    """A bounded, durable FIFO of outcome records keyed by query id. Safe to share between threads."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._conn = _schema.connect(os.fspath(config.path), config.synchronous)

    def put(self, record: OutcomeRecord) -> bool:
        """Stores the record durably (see the module docstring); False if its id was already queued."""
        if not record.query_id.strip():
            raise InvalidInput("query_id must not be empty", field="query_id")
        payload = record.to_pb().SerializeToString(deterministic=True)
        if len(payload) > self.config.max_bytes:
            raise InvalidInput(f"a record of {len(payload)} bytes can never fit in max_bytes="
                               f"{self.config.max_bytes}", field="max_bytes")
        with self._write() as conn:
            inserted = conn.execute(
                "INSERT OR IGNORE INTO outbox (query_id, payload, size, enqueued_at) VALUES (?, ?, ?, ?)",
                (record.query_id, payload, len(payload), time.time()),
            ).rowcount
            if inserted:
                self._evict_over_bounds(conn)
                self._remember(conn, record.query_id, payload)
        return bool(inserted)

    def answered(self, query_id: str) -> tuple[OutcomeRecord, bool] | None:
        """The remembered record of an answered query and whether it was rated; None if not remembered."""
        with self._lock:
            row = self._conn.execute("SELECT payload, rated FROM answered WHERE query_id = ?",
                                     (query_id,)).fetchone()
        if row is None:
            return None
        return QueuedOutcome(query_id, bytes(row[0]), 0.0, 0).record(), bool(row[1])

    def mark_rated(self, query_id: str) -> bool:
        """Marks a remembered query rated; False if it is not remembered or was rated before."""
        with self._write() as conn:
            changed = conn.execute("UPDATE answered SET rated = 1 WHERE query_id = ? AND rated = 0",
                                   (query_id,)).rowcount
        return bool(changed)

    def peek_batch(self, n: int | None = None) -> tuple[QueuedOutcome, ...]:
        """The oldest ``n`` records (``batch_size`` by default), left in place."""
        limit = self.config.batch_size if n is None else n
        with self._lock:
            rows = self._conn.execute(
                "SELECT query_id, payload, enqueued_at, attempts FROM outbox ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return tuple(QueuedOutcome(q, bytes(p), e, a) for q, p, e, a in rows)

    def mark_attempted(self, query_ids: Iterable[str]) -> None:
        """Counts one more upload attempt for each of these records."""
        with self._write() as conn:
            conn.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE query_id = ?", _params(query_ids))

    def ack(self, query_ids: Iterable[str], *, duplicates: Iterable[str] = ()) -> int:
        """Deletes the records the cloud stored (``query_ids``) or already had (``duplicates``).

        Returns how many were deleted; ids no longer queued are ignored.
        """
        with self._write() as conn:
            stored = conn.executemany("DELETE FROM outbox WHERE query_id = ?", _params(query_ids)).rowcount
            known = conn.executemany("DELETE FROM outbox WHERE query_id = ?", _params(duplicates)).rowcount
            conn.execute(
                "UPDATE totals SET uploaded_total = uploaded_total + ?, duplicates_total = duplicates_total + ?",
                (stored, known),
            )
        return int(stored + known)

    def dead_letter(self, rejected: Iterable[RejectedOutcome]) -> int:
        """Moves refused records out of the outbox into the dead letters; returns how many moved."""
        now = time.time()
        moved = 0
        with self._write() as conn:
            for item in rejected:
                moved += conn.execute(
                    "INSERT OR REPLACE INTO dead_letter (query_id, payload, field, reason, dead_at) "
                    "SELECT query_id, payload, ?, ?, ? FROM outbox WHERE query_id = ?",
                    (item.field, item.reason, now, item.query_id),
                ).rowcount
                conn.execute("DELETE FROM outbox WHERE query_id = ?", (item.query_id,))
            conn.execute("UPDATE totals SET dead_lettered_total = dead_lettered_total + ?", (moved,))
        return moved

    def dead_letters(self) -> tuple[DeadLetter, ...]:
        """Every dead letter, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT query_id, field, reason, dead_at, payload FROM dead_letter ORDER BY dead_at, query_id"
            ).fetchall()
        return tuple(DeadLetter(q, f, r, d, bytes(p)) for q, f, r, d, p in rows)

    def stats(self) -> QueueStats:
        """Current size and lifetime totals (persisted in the file, so they survive restarts)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT queued, queued_bytes, evicted_total, uploaded_total, duplicates_total, "
                "dead_lettered_total FROM totals"
            ).fetchone()
        return QueueStats(*row)

    def close(self) -> None:
        """Closes the file (checkpointing the WAL); the queue cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> OutcomeQueue:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock, committed on success and rolled back otherwise (a failed
        COMMIT too). A file that cannot be written (disk full, I/O error) is Unavailable."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                finally:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                raise Unavailable(f"the outbox {self.config.path} cannot be written: {exc}") from exc

    def _remember(self, conn: sqlite3.Connection, query_id: str, payload: bytes) -> None:
        """Remembers the record for feedback, forgetting the oldest beyond ``remember``."""
        if not self.config.remember:
            return
        seq = conn.execute("INSERT OR IGNORE INTO answered (query_id, payload, answered_at) VALUES (?, ?, ?)",
                           (query_id, payload, time.time())).lastrowid
        if seq is not None and seq > self.config.remember:
            conn.execute("DELETE FROM answered WHERE seq <= ?", (seq - self.config.remember,))

    def _evict_over_bounds(self, conn: sqlite3.Connection) -> None:
        """Evicts the oldest records until both bounds hold again (never the newest: it fits alone)."""
        queued, queued_bytes = conn.execute("SELECT queued, queued_bytes FROM totals").fetchone()
        excess_records = queued - self.config.max_records
        excess_bytes = queued_bytes - self.config.max_bytes
        if excess_records <= 0 and excess_bytes <= 0:
            return
        last_seq, evicted, freed = _oldest_to_free(conn, excess_records, excess_bytes)
        conn.execute("DELETE FROM outbox WHERE seq <= ?", (last_seq,))
        conn.execute("UPDATE totals SET evicted_total = evicted_total + ?", (evicted,))
        logger.debug("outbox full: evicted the %d oldest records (%d bytes)", evicted, freed)


def _oldest_to_free(conn: sqlite3.Connection, records: int, size: int) -> tuple[int, int, int]:
    """(last seq, count, bytes) of the shortest run of oldest records with >= ``records`` and ``size``."""
    last_seq, count, freed = 0, 0, 0
    cursor = conn.execute("SELECT seq, size FROM outbox ORDER BY seq")
    try:
        for seq, row_size in cursor:
            if count >= records and freed >= size:
                break
            last_seq, count, freed = seq, count + 1, freed + row_size
    finally:
        cursor.close()
    return last_seq, count, freed


def _params(query_ids: Iterable[str]) -> Sequence[tuple[str]]:
    return [(query_id,) for query_id in query_ids]
