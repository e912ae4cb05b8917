"""The engine of the service's database and its migrations (SQLite for one host, PostgreSQL for replicas)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_KEY = int.from_bytes(b"ankrevw", "big")  # pg_advisory_xact_lock id (kept from the review schema)


def create_engine(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        # a server that does not answer fails the connection in 2 s (a 503), not after TCP's minutes
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 2})
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection, _record):  # WAL: readers never block the writer
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


@contextmanager
def _sqlite_file_lock(engine: sa.Engine) -> Iterator[None]:
    """An exclusive lock beside the database file; the other processes wait for it."""
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to the newest (or the given) Alembic revision; creates it on an empty database.

    Every API worker calls this at start-up: one migrates while the others wait on a lock
    (PostgreSQL: an advisory lock held to the end of the transaction; SQLite: a file lock), then
    find the schema current. Without it two workers on a fresh store both create Alembic's table.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _sqlite_file_lock(engine) if engine.dialect.name == "sqlite" else nullcontext():
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
