"""The service's one database: the engine, the Alembic migrations of every table (review cases,
orders, receipts, API keys) and the time helpers every store writes with.

Review, orders and auth each keep their own tables (`*/schema.py`) and queries; they open the
database through `create_engine`, bring it up to date with `migrate`, and stamp rows with
`utcnow` / `iso` from here, so no package reaches into another for them.
"""

from serving.db.engine import MIGRATIONS_DIR, create_engine, migrate
from serving.db.times import iso, utcnow

__all__ = ["MIGRATIONS_DIR", "create_engine", "iso", "migrate", "utcnow"]
