"""The library's log records, routed into Python's ``logging``.

Every call's records (a start's decision, a run's step, a failed call) go to
the logger ``startgate`` on the thread that made the call, before the call
returns (for ``AsyncGate``, in the event loop's thread before the awaited call
resumes). Each record carries the event's fields as attributes — ``call``,
``operation``, ``tenant_id``, ``outcome``, ``reason_code``, ``run_id``,
``duration_us``, ``round_trips``, ``retries``, ``error``, … (absent where they
do not apply) — and all of them as the dict ``startgate_fields``; never params
or credentials. The library only collects what the logger's effective level
lets through. ``STARTGATE_LOG=info`` (or error, warn, debug, trace) in the
environment adds a stderr handler at that level.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Dict

from . import _native

LOGGER = logging.getLogger("startgate")
# A library's logger stays silent unless the application configures logging.
LOGGER.addHandler(logging.NullHandler())

#: The library's level names and the ``logging`` levels they map to (trace
#: is below DEBUG, as logging's own NOTSET-adjacent levels are).
LEVELS: Dict[str, int] = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}

# Names a record's fields may not take (LogRecord's own attributes).
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

def deliver_records() -> None:
    """Logs the records waiting, if any, on this thread: what the native
    module calls when a call finishes while the logger collects, and what an
    ``AsyncGate`` call that waited calls in the event loop's thread."""
    for level, message, fields in _native.take_logs():
        extra: Dict[str, Any] = {
            (f"field_{key}" if key in _RESERVED else key): value for key, value in fields.items()
        }
        extra["startgate_fields"] = fields
        LOGGER.log(LEVELS.get(level, logging.DEBUG), message, extra=extra)


class FieldsFormatter(logging.Formatter):
    """``time LEVEL startgate: message key=value …``: the library's own line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "startgate_fields", None) or {}
        parts = [f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}" for key, value in fields.items()]
        return " ".join([line, *parts]) if parts else line


def _from_environment() -> None:
    name = os.environ.get("STARTGATE_LOG", "").strip()
    if name not in LEVELS:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(LEVELS[name])


_from_environment()
