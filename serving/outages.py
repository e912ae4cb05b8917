"""Backend outages are a 503 with Retry-After, never a 500 or a hang; /readyz says so while they last.

PostgreSQL refusing connections, Redis gone or silent and a full photo disk all answered 500
(and a sign-in waited 60 s on Redis). Each is recognised here once (`outage_of`), answered as
503 naming the backend (`outage_response`), and bounded in time: Redis calls give up after 1 s
(`REDIS_TIMEOUTS`), PostgreSQL connections after 2 s (serving/db/engine.py; libpq's minimum).
Nothing is cached about an outage: the next request tries again, so service resumes by itself.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

import sqlalchemy as sa
from starlette.responses import JSONResponse

log = logging.getLogger("ankang.outage")

RETRY_AFTER_SECONDS = 2
REDIS_TIMEOUTS: dict[str, Any] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, "retry_on_timeout": False}
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def _redis_errors() -> tuple[type[BaseException], ...]:
    try:
        import redis.exceptions
    except ImportError:  # the serving install without Redis: nothing to recognise
        return ()
    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError)


REDIS_ERRORS = _redis_errors()
DATABASE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, sa.exc.DisconnectionError)
# What a handler catches: every class an outage can arrive as (outage_of then decides).
OUTAGE_TYPES: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, *REDIS_ERRORS, OSError)


def outage_of(error: BaseException) -> str | None:
    """Which backend `error` says is unavailable ("database", "redis", "photo store"), or None."""
    if isinstance(error, DATABASE_ERRORS):
        return "database"
    if REDIS_ERRORS and isinstance(error, REDIS_ERRORS):
        return "redis"
    if isinstance(error, OSError) and error.errno in _DISK_FULL:
        return "photo store"
    return None


def outage_response(backend: str) -> JSONResponse:
    log.warning("backend_unavailable", extra={"backend": backend})
    body = {"error": {"field": "service", "message": f"the {backend} is unavailable right now; retry shortly"}}
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def unavailable_backends(engine: sa.Engine | None, redis_url: str | None) -> list[str]:
    """The required backends that do not answer now (for /readyz): the database, and Redis when configured."""
    down = []
    if engine is not None:
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except DATABASE_ERRORS:
            down.append("database")
    if redis_url:
        try:
            import redis

            client = redis.Redis.from_url(redis_url, **REDIS_TIMEOUTS)
            try:
                client.ping()
            finally:
                client.close()
        except REDIS_ERRORS:
            down.append("redis")
    return down
