"""Log lines that say which request and whose, and carry no secret.

``RequestObservationMiddleware`` sets the request id (the proxy's
``X-Request-ID`` when it sends a sane one, otherwise a new one) and the user
id for the duration of a request; ``ContextFilter`` puts them on every
record; ``JsonFormatter`` writes one JSON object per line (production).
Both formatters redact what would be a credential in a logged URL: a long
token-like path segment (ping and calendar addresses, reset and e-mail
links) or query value.
"""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str] = ContextVar("request_id", default="")
user_id: ContextVar[int | None] = ContextVar("user_id", default=None)

# A URL's path segment or query value of 16+ token characters is a
# credential as often as not (ping tokens, calendar tokens, signed links,
# reset tokens). Plain words in a message ("action=heartbeat.token_rotated")
# are neither.
_PATH_TOKEN = re.compile(r"(?<=/)[A-Za-z0-9_\-:.~%]{16,}")
_QUERY_TOKEN = re.compile(r"([?&][\w.\-]{1,40}=)([^&\s\"']{16,})")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
REDACTED = "[redacted]"


def _hidden(value: str) -> str:
    # A task's or a row's UUID names it and opens nothing: kept, to follow it in logs.
    return value if _UUID.fullmatch(value) else REDACTED


def redact(text: str) -> str:
    text = _PATH_TOKEN.sub(lambda found: _hidden(found.group(0)), text)
    return _QUERY_TOKEN.sub(lambda found: found.group(1) + _hidden(found.group(2)), text)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.user_id = user_id.get()
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One line per event: time, level, logger, message, request id, user id
    (and the traceback, redacted like the message)."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", "") or None,
            "user_id": getattr(record, "user_id", None),
        }
        if record.exc_info:
            event["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(event, default=str)
