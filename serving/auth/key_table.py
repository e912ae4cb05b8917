"""The `api_keys` table (migration 0009, in the review store's database) and the one-time import of
the keys file that held the keys before (ANKANG_API_KEYS_FILE, default ANKANG_DATA_DIR/api_keys.json).

Every API replica reads the same rows, so a key created or revoked on one machine counts on all of
them. A revoked key keeps its row with `revoked_at`, so importing an old keys file again cannot bring
it back.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from serving.auth.principals import StoredKey
from serving.auth.roles import check_role
from serving.db import create_engine, migrate, utcnow
from serving.settings import ServingSettings

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("salt", sa.LargeBinary(32), nullable=False),
    sa.Column("digest", sa.LargeBinary(32), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("holder", sa.String(100), nullable=False),
    sa.Column("label", sa.Text(), nullable=False),
    sa.Column("enterprise_id", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("revoked_at", sa.DateTime(), nullable=True),
)


def open_key_database(settings: ServingSettings) -> tuple[sa.Engine, FileImport | None]:
    """The engine of the settings' database, migrated (the review store's migrations and lock), and
    the import of a leftover keys file (None when there is none)."""
    engine = create_engine(settings.resolved_database_url)
    migrate(engine)
    return engine, import_keys_file(engine, path=settings.resolved_api_keys_file)


def where(engine: sa.Engine) -> str:
    """The database for messages, without its password."""
    return engine.url.render_as_string(hide_password=True)


def _created_at(created: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(created)
    except ValueError:
        return utcnow()  # the keys file's `created` was free text; the import time is the best we know
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _row(record: StoredKey) -> dict[str, object]:
    return {
        "key_id": record.key_id,
        "salt": record.salt,
        "digest": record.digest,
        "role": record.role,
        "holder": record.holder,
        "label": record.label,
        "enterprise_id": record.enterprise_id,
        "created_at": _created_at(record.created),
    }


def _record(row: sa.Row) -> StoredKey:
    return StoredKey(
        row.key_id,
        check_role(row.role),
        bytes(row.salt),
        bytes(row.digest),
        row.created_at.replace(tzinfo=dt.UTC).isoformat(timespec="seconds"),
        row.label,
        row.holder,
        row.enterprise_id,
    )


def insert_keys(engine: sa.Engine, records: list[StoredKey]) -> int:
    """Add the keys whose ids are not in the table yet (revoked ones included); how many were added."""
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    added = 0
    with engine.begin() as connection:
        for record in records:  # RETURNING, not rowcount: psycopg reports -1 for this statement
            statement = insert(api_keys).values(_row(record)).on_conflict_do_nothing(index_elements=["key_id"])
            added += len(connection.execute(statement.returning(api_keys.c.key_id)).all())
    return added


def active_keys(engine: sa.Engine) -> list[StoredKey]:
    query = sa.select(api_keys).where(api_keys.c.revoked_at.is_(None)).order_by(api_keys.c.created_at)
    with engine.connect() as connection:
        return [_record(row) for row in connection.execute(query)]


def revoke_key(engine: sa.Engine, key_id: str, *, now: dt.datetime) -> dt.datetime | None:
    """Mark the key revoked at `now`; when it was revoked (earlier, if it already was), None for no such key."""
    with engine.begin() as connection:
        connection.execute(
            api_keys.update().where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        return connection.execute(sa.select(api_keys.c.revoked_at).where(api_keys.c.key_id == key_id)).scalar()


def _record_from_json(entry: dict[str, str]) -> StoredKey:
    return StoredKey(
        entry["id"],
        check_role(entry["role"]),
        bytes.fromhex(entry["salt"]),
        bytes.fromhex(entry["sha256"]),
        entry.get("created", ""),
        entry.get("label", ""),
        entry.get("holder", ""),
        entry.get("enterprise_id", ""),
    )


@dataclass(frozen=True)
class FileImport:
    """What happened to a leftover keys file; `message` is the one line the service or command says."""

    path: Path
    found: int = 0
    added: int = 0
    renamed_to: Path | None = None
    error: str = ""

    @property
    def message(self) -> str:
        if self.error:
            return f"the keys file {self.path} was not imported ({self.error}); fix or remove it"
        kept = f"renamed {self.renamed_to.name}" if self.renamed_to else "could not be renamed; remove it"
        return (
            f"imported {self.added} of the {self.found} keys in {self.path} into the database "
            f"({self.found - self.added} already there); the file is no longer read ({kept})"
        )


def import_keys_file(engine: sa.Engine, *, path: Path) -> FileImport | None:
    """Copy the keys file's keys into the table once, then rename the file so it is not read again."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["keys"]
        records = [_record_from_json(entry) for entry in entries]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return FileImport(path, error=f"{type(error).__name__}: {error}")
    added = insert_keys(engine, records)
    renamed_to = path.with_name(f"{path.name}.imported")
    try:
        path.rename(renamed_to)
    except FileNotFoundError:
        pass  # another replica imported and renamed it first; its keys are in the table either way
    except OSError:
        renamed_to = None  # a read-only mount: the next start reads it again and adds nothing
    return FileImport(path, found=len(records), added=added, renamed_to=renamed_to)
