"""JSON log lines with the request id, and nothing personal in them.

Only the fields named here are ever written: the message, the logger, the level, the
time, the request id, and the ``extra`` keys a caller passes on purpose. Callers pass
identifiers of our own objects (member ids, client ids, routes), never subject data.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


# One encoder for every line: json.dumps() with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            line["request_id"] = request_id
        line.update(
            (k, v) for k, v in record.__dict__.items() if k not in _STANDARD and k[0] != "_"
        )
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception messages and tracebacks can carry request data.
            line["exc_type"] = record.exc_info[0].__name__
        return _ENCODER.encode(line)


def configure_logging(level: str = "INFO") -> None:
    """Send every log line, ours and the libraries', to stderr as JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    # What no line of ours holds, no record need find out: the caller's file and line
    # (a walk up the stack per record), its thread and process (the logging HOWTO's
    # "Optimization"). An access line then costs about half as much.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log repeats ours without the request id; ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
    # alembic narrates every migration context, including /readyz's revision check.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
