"""Cases keep who reported them, as a keyed pseudonym (`serving.auth.pseudonymise`), never the raw text.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("review_cases", sa.Column("reporter", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("review_cases", "reporter")
