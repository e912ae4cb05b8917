"""Alembic environment: runs on the connection that `serving.review.store.migrate` passes in."""

from __future__ import annotations

from alembic import context

from serving.review.schema import metadata

VERSION_TABLE = "review_alembic_version"  # own table: other parts of Ankang may use Alembic too

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
