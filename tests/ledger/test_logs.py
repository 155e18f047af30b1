"""Log lines are JSON with the request id, and only the fields given on purpose."""

from __future__ import annotations

import json
import logging
import sys

from ledger.logs import JsonFormatter, request_id_var


def _format(record: logging.LogRecord) -> dict[str, object]:
    line: dict[str, object] = json.loads(JsonFormatter().format(record))
    return line


def test_a_line_carries_the_request_id_and_the_extra_fields() -> None:
    token = request_id_var.set("req-1")
    try:
        record = logging.makeLogRecord(
            {
                "name": "ledger.test",
                "levelno": 20,
                "levelname": "INFO",
                "msg": "hello %s",
                "args": ("world",),
                "route": "/v1/me",
            }
        )
        line = _format(record)
    finally:
        request_id_var.reset(token)
    assert line["msg"] == "hello world"
    assert line["request_id"] == "req-1"
    assert line["route"] == "/v1/me"
    assert line["level"] == "info"
    assert "args" not in line


def _fail() -> None:
    raise ValueError("subject phone:+8613800138000 was in this message")


def test_an_exception_is_logged_by_type_only() -> None:
    try:
        _fail()
    except ValueError:
        record = logging.makeLogRecord(
            {
                "name": "x",
                "levelno": 40,
                "levelname": "ERROR",
                "msg": "failed",
                "exc_info": sys.exc_info(),
            }
        )
    text = JsonFormatter().format(record)
    assert json.loads(text)["exc_type"] == "ValueError"
    assert "8613800138000" not in text
