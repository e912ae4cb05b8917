"""Review cases, their flagged hazard types and the append-only decision log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_cases",
        sa.Column("photo_id", sa.String(32), primary_key=True),
        sa.Column("photo_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("triage", sa.String(8), nullable=False),
        sa.Column("severity_rank", sa.SmallInteger(), nullable=False),
        sa.Column("top_probability", sa.Float(), nullable=False),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("flagged", sa.JSON(), nullable=False),
        sa.Column("cam", sa.LargeBinary(), nullable=True),
        sa.Column("cam_shape", sa.JSON(), nullable=True),
        sa.Column("site_id", sa.String(200), nullable=True),
        sa.Column("sector", sa.String(200), nullable=True),
        sa.Column("channel", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("dhash", sa.String(16), nullable=False),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decision_count", sa.Integer(), nullable=False, server_default="0"),
    )
    # The queue's sort order (most urgent first) and its filters, so one page is an index range scan.
    op.create_index(
        "ix_review_cases_queue",
        "review_cases",
        ["status", sa.text("severity_rank DESC"), sa.text("top_probability DESC"), "created_at"],
    )
    op.create_index("ix_review_cases_created", "review_cases", ["status", "created_at"])
    op.create_index("ix_review_cases_site", "review_cases", ["site_id", "status"])
    op.create_index("ix_review_cases_group", "review_cases", ["group_id"])
    op.create_index("ix_review_cases_sha256", "review_cases", ["photo_sha256"])
    op.create_table(
        "review_case_flags",
        sa.Column(
            "photo_id", sa.String(32), sa.ForeignKey("review_cases.photo_id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("hazard", sa.String(64), primary_key=True),
    )
    op.create_index("ix_review_case_flags_hazard", "review_case_flags", ["hazard", "photo_id"])
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "photo_id", sa.String(32), sa.ForeignKey("review_cases.photo_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("hazards", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("via_photo_id", sa.String(32), nullable=True),
    )
    op.create_index("ix_review_decisions_photo", "review_decisions", ["photo_id", "id"])


def downgrade() -> None:
    op.drop_table("review_decisions")
    op.drop_table("review_case_flags")
    op.drop_table("review_cases")
