"""The queue file's schema: the outbox, the dead letters, one row of running totals, and the records of
recently answered queries (``answered``: what user feedback may rate, kept after their upload).

Triggers keep ``queued`` and ``queued_bytes`` in step with the outbox inside the same transaction as
each insert or delete, so the size bound is checked in O(1) and stays right whoever writes the file.
"""

from __future__ import annotations

import sqlite3

from confroute.errors import InvalidInput

VERSION = 2  # 2: the answered table (a version-1 file gains it when opened)

_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,            -- rowid: max + 1 on insert, so ORDER BY seq is arrival order
    query_id TEXT NOT NULL UNIQUE,      -- the idempotency key, here as in the cloud
    payload BLOB NOT NULL,              -- a serialized confroute.v1.OutcomeRecord
    size INTEGER NOT NULL,
    enqueued_at REAL NOT NULL,          -- unix seconds
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_letter (
    query_id TEXT PRIMARY KEY,
    payload BLOB NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    dead_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    queued INTEGER NOT NULL DEFAULT 0,
    queued_bytes INTEGER NOT NULL DEFAULT 0,
    evicted_total INTEGER NOT NULL DEFAULT 0,
    uploaded_total INTEGER NOT NULL DEFAULT 0,
    duplicates_total INTEGER NOT NULL DEFAULT 0,
    dead_lettered_total INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS answered (
    seq INTEGER PRIMARY KEY,            -- arrival order: the oldest are forgotten first
    query_id TEXT NOT NULL UNIQUE,
    payload BLOB NOT NULL,              -- the record as queued (no text)
    answered_at REAL NOT NULL,
    rated INTEGER NOT NULL DEFAULT 0    -- 1 once feedback for it was taken
);
INSERT OR IGNORE INTO totals (id) VALUES (1);
CREATE TRIGGER IF NOT EXISTS outbox_counted_in AFTER INSERT ON outbox BEGIN
    UPDATE totals SET queued = queued + 1, queued_bytes = queued_bytes + NEW.size WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS outbox_counted_out AFTER DELETE ON outbox BEGIN
    UPDATE totals SET queued = queued - 1, queued_bytes = queued_bytes - OLD.size WHERE id = 1;
END;
"""


def connect(path: str, synchronous: str) -> sqlite3.Connection:
    """A connection in WAL mode with the schema in place; the caller serializes its use."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise InvalidInput(f"{path} cannot be put in WAL mode (got {mode!r})", field="path")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Creates the schema in a fresh file; refuses a file written by a newer schema."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > VERSION:
        raise InvalidInput(f"{path} has queue schema {found}; this agent knows up to {VERSION}", field="path")
    conn.executescript(f"BEGIN IMMEDIATE; {_DDL} PRAGMA user_version={VERSION}; COMMIT;")
