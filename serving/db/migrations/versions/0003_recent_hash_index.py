"""A covering index for the near-duplicate lookup (recent cases' dHash and group) and date-range counts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_review_cases_recent_hash", "review_cases", ["created_at", "status", "dhash", "group_id"])


def downgrade() -> None:
    op.drop_index("ix_review_cases_recent_hash", table_name="review_cases")
