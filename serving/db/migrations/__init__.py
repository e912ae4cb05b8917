"""Alembic migrations of every table of the service's database; `serving.db.migrate` runs them at start-up.

Revision ids are plain numbers ("0001", "0002", ...) in one line of history; a new table or column
is the next number, its `down_revision` the current head."""
