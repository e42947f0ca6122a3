"""Logging for every confroute process (the edge agent, the cloud service, its workers): set up once, in ``main()``.

``text`` is for a terminal; ``json`` writes one JSON object per line (for containers and log shippers):
the time (UTC, ISO 8601), level, logger and message, plus the formatted traceback as ``exception`` and
the caller's stack as ``stack`` when the record carries them. Every line is valid JSON whatever the
message holds (quotes, newlines, non-ASCII text): the record is serialised by ``json.dumps``, never by
a ``%``-format template. A command's last word, :func:`report_error`, follows the format too.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import TextIO

from confroute.errors import InvalidInput

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:  # cached on the record, as logging.Formatter does
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` (one of ``LOG_FORMATS``)."""
    if log_format == "json":
        return JsonLinesFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise InvalidInput(f"log_format must be one of {LOG_FORMATS}, got {log_format!r}", field="log_format")


def configure_logging(log_format: str = "text", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Replaces the root logger's handlers with one on ``stream`` (stderr) in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(formatter_for(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def report_error(program: str, error: BaseException) -> None:
    """The error that ends ``program``, on stderr: a JSON line when logging is set up as ``json``
    (so that a log shipper can read every line), else ``program: error: ...`` for a person."""
    if any(isinstance(handler.formatter, JsonLinesFormatter) for handler in logging.getLogger().handlers):
        logging.getLogger(program).error("%s: error: %s", program, error)
    else:
        print(f"{program}: error: {error}", file=sys.stderr)
