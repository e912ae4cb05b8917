"""Signed-out sessions, refused by every replica: the `revoked_sessions` table (migration 0010).

A session cookie is signed and carries its own expiry, so without a shared list a cookie copied
before sign-out kept working for 8 hours. Sign-out writes the session's id here; each replica
reads the unexpired ids at most every `refresh_seconds` (like the keys table), and its own
sign-outs count at once. Rows are deleted once the session would have expired anyway.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from serving.db import create_engine, migrate, utcnow

REFRESH_SECONDS = 2.0  # how stale another replica's sign-out may be here

metadata = sa.MetaData()
revoked_sessions = sa.Table(
    "revoked_sessions",
    metadata,
    sa.Column("sid", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.DateTime(), nullable=False),
    sa.Column("revoked_at", sa.DateTime(), nullable=False),
)


class SessionRevocations:
    """The ids of signed-out, unexpired sessions, read from the database shared by the replicas."""

    def __init__(
        self,
        database_url: str,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.database_url, self.refresh_seconds, self.clock = database_url, refresh_seconds, clock
        self._engine: sa.Engine | None = None
        self._revoked: set[str] = set()  # as last read from the table
        self._signed_out_here: dict[str, float] = {}  # sid: expiry, counted at once whatever the last read
        self._read_at: float | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> sa.Engine:
        """Opened at first use: most requests carry a key, not a session."""
        if self._engine is None:
            engine = create_engine(self.database_url)
            migrate(engine)
            self._engine = engine
        return self._engine

    def revoke(self, sid: str, *, expires: float) -> None:
        """Refuse session `sid` from now on, here at once and on the other replicas within refresh_seconds."""
        expires_at = dt.datetime.fromtimestamp(expires, dt.UTC).replace(tzinfo=None)
        now = utcnow()
        with self._lock:
            self._signed_out_here = {key: end for key, end in self._signed_out_here.items() if end > time.time()}
            self._signed_out_here[sid] = expires
        with self.engine.begin() as connection:
            connection.execute(revoked_sessions.delete().where(revoked_sessions.c.expires_at < now))
            exists = connection.execute(sa.select(revoked_sessions.c.sid).where(revoked_sessions.c.sid == sid)).first()
            if exists is None:
                connection.execute(revoked_sessions.insert().values(sid=sid, expires_at=expires_at, revoked_at=now))

    def is_revoked(self, sid: str) -> bool:
        self._refresh()
        return sid in self._revoked or sid in self._signed_out_here

    def _refresh(self) -> None:
        with self._lock:
            now = self.clock()
            if self._read_at is not None and now - self._read_at < self.refresh_seconds:
                return
            self._read_at = now
        query = sa.select(revoked_sessions.c.sid).where(revoked_sessions.c.expires_at >= utcnow())
        try:
            with self.engine.connect() as connection:
                revoked = set(connection.execute(query).scalars())
        except sa.exc.SQLAlchemyError:  # the database is away: keep the last list, read again next time
            with self._lock:
                self._read_at = None
            return
        with self._lock:
            self._revoked = revoked
