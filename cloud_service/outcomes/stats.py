"""The outcome log's counters, read by the service's metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutcomeLogStats:
    """A snapshot. Counters only grow; ``buffered`` is a gauge.

    Every record passed to ``record()`` ends up counted exactly once as ``written``, ``duplicates`` or
    ``dropped`` -- or is still ``buffered``. ``store()`` adds to ``written`` and ``duplicates`` too.
    """

    written: int = 0  # records appended to the stream
    duplicates: int = 0  # records whose query id was already logged
    buffered: int = 0  # records accepted by record() and not yet written
    dropped: int = 0  # records accepted by record() that will never be written (buffer full, closed)
    write_errors: int = 0  # failed write attempts, each retry counted


@dataclass
class Counters:
    """The mutable counters behind :class:`OutcomeLogStats`."""

    written: int = 0
    duplicates: int = 0
    dropped: int = 0
    write_errors: int = 0

    def snapshot(self, buffered: int) -> OutcomeLogStats:
        """The counters now, with the current buffer depth."""
        return OutcomeLogStats(
            written=self.written,
            duplicates=self.duplicates,
            buffered=buffered,
            dropped=self.dropped,
            write_errors=self.write_errors,
        )
