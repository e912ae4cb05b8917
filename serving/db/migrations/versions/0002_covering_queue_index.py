"""The queue index also covers photo_id, so counts and the hazard filter never read case rows.

Measured at 10,000 open cases (benchmarks/review_queue.py): the hazard-filtered queue went from
~140 ms to ~35 ms on SQLite because case rows (CAM grid, JSON) are wide and each count read them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ORDER = ["status", sa.text("severity_rank DESC"), sa.text("top_probability DESC"), "created_at"]


def upgrade() -> None:
    op.drop_index("ix_review_cases_queue", table_name="review_cases")
    op.create_index("ix_review_cases_queue", "review_cases", [*ORDER, "photo_id"])


def downgrade() -> None:
    op.drop_index("ix_review_cases_queue", table_name="review_cases")
    op.create_index("ix_review_cases_queue", "review_cases", ORDER)
