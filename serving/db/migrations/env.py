"""Alembic environment: runs on the connection that `serving.db.migrate` passes in.

No `target_metadata`: migrations are written by hand (the tables live beside their queries in
review/, orders/ and auth/), so nothing here imports those packages."""

from __future__ import annotations

from alembic import context

VERSION_TABLE = "review_alembic_version"  # the name existing databases have (it began as the review schema's)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
