"""Structured JSON logs with request ids; nothing secret or identifying reaches a log line.

`RequestLog` (an ASGI middleware) gives every request an id (a well-formed client
`X-Request-ID` is kept, otherwise a new one), returns it in the response header, makes it
available to every log record written while the request runs, and writes one `request` line
(method, path, status, duration, key id and role; never headers, bodies or query strings).
`RedactingFilter` scrubs API keys, bearer tokens, cookies and byte dumps from any record.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("ankang_request_id", default=None)

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Fields never logged whatever a caller passes in `extra`: identities and secrets.
_FORBIDDEN_FIELDS = {"reporter", "key", "api_key", "authorization", "cookie", "photo", "password", "secret"}
_SECRET_PATTERNS = (
    (re.compile(r"ank_[0-9a-f]{8}_[A-Za-z0-9_-]+"), "ank_[redacted]"),
    (re.compile(r"""(?i)(bearer\s+)[^\s`'"]{8,}"""), r"\1[redacted]"),
    (re.compile(r"(?i)(x-api-key['\"]?\s*[:=,]\s*['\"]?)[^'\"\s,)`]{8,}"), r"\1[redacted]"),
    (re.compile(r"(?i)(ankang_session|ankang_csrf)=[^;\s'\"]+"), r"\1=[redacted]"),
    (re.compile(r"b(['\"])(?:\\.|(?!\1).){64,}\1", re.S), "b'[bytes redacted]'"),
)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and drops forbidden `extra` fields before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        for name in _FORBIDDEN_FIELDS & set(vars(record)):
            delattr(record, name)
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id and the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRIBUTES and name not in entry and name not in _FORBIDDEN_FIELDS:
                entry[name] = value if isinstance(value, (int, float, bool, type(None))) else redact(str(value))
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, stream: Any = None, level: str | None = None) -> logging.Logger:
    """Send the `ankang` loggers to `stream` (stderr) as redacted JSON lines; safe to call repeatedly.

    `level` (ServingSettings.log_level) sets the level; None keeps the one set before (else INFO)."""
    logger = logging.getLogger("ankang")
    if level is not None or logger.level == logging.NOTSET:
        logger.setLevel((level or "INFO").upper())
    logger.propagate = False
    for handler in list(logger.handlers):
        if getattr(handler, "_ankang_json", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler._ankang_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    return logger


class ClientErrorTracebacks(logging.Filter):
    """Drops BentoML's `Exception on <path>` record (ERROR, with a traceback) when the exception is the
    client's fault: request validation (400) or a BentoML error below 500. `RequestLog` writes the one
    info line such a request gets; tracebacks stay for server errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (error is not None and _is_client_error(error))


def _is_client_error(error: BaseException) -> bool:
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        return True
    return isinstance(error, BentoMLException) and int(error.error_code) < 500


# Where BentoML logs an endpoint's exception (bentoml._internal.server.http_app.log_exception).
BENTOML_ENDPOINT_LOGGER = "bentoml._internal.server.http_app"


def quiet_client_error_tracebacks() -> None:
    logger = logging.getLogger(BENTOML_ENDPOINT_LOGGER)
    if not any(isinstance(existing, ClientErrorTracebacks) for existing in logger.filters):
        logger.addFilter(ClientErrorTracebacks())


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers") or []:
        if key.lower() == b"x-request-id":
            candidate = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


class RequestLog:
    """Outermost middleware: request id in context and response header, one JSON line per request."""

    def __init__(
        self,
        app: Callable,
        *,
        level: str | None = None,
        skip_paths: tuple[str, ...] = ("/livez", "/readyz", "/healthz", "/metrics"),
    ):
        self.app = app
        self.skip_paths = skip_paths
        self.log = configure_logging(level=level).getChild("request")
        quiet_client_error_tracebacks()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        scope["ankang.request_id"] = request_id
        started, status = time.perf_counter(), [500]

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._log(scope, status[0], time.perf_counter() - started)
            request_id_var.reset(token)

    def _log(self, scope: Scope, status: int, seconds: float) -> None:
        if scope.get("path") in self.skip_paths:
            return
        principal = scope.get("ankang.principal")
        self.log.info(
            "request",
            extra={
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                "key_id": getattr(principal, "key_id", None),
                "role": getattr(principal, "role", None),
            },
        )
