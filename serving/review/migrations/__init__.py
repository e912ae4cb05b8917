"""Alembic migrations of the review store; `ReviewStore.migrate()` runs them at start-up."""
