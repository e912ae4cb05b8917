"""Enterprise scores kept (every score from the API, a file or a batch job, and each enterprise's
latest tier), officer assignments (挂点), unions with the enterprises they cover, union grade runs
and grade history (serving/enterprises/schema.py, serving/unions/schema.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TIERS = (1, 2, 3, 4, 5)
FOCUS_GROUPS = ("industrial", "new_employment", "migrant")


def upgrade() -> None:
    op.create_table(
        "enterprise_scores",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("enterprise_id", sa.String(200), nullable=False),
        sa.Column("tier", sa.SmallInteger(), nullable=False),
        sa.Column("model_tier", sa.SmallInteger(), nullable=False),
        *[sa.Column(f"p_tier_{tier}", sa.Float(), nullable=False) for tier in TIERS],
        sa.Column("reasons", sa.Text(), nullable=False, server_default=""),
        sa.Column("rules_fired", sa.Text(), nullable=False, server_default=""),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("profile_fingerprint", sa.String(64), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_enterprise_scores_enterprise", "enterprise_scores", ["enterprise_id", "scored_at"])
    op.create_index(  # the weekly trend reads only high scores by time: a partial index
        "ix_enterprise_scores_high_at",
        "enterprise_scores",
        ["scored_at"],
        sqlite_where=sa.text("tier >= 4"),
        postgresql_where=sa.text("tier >= 4"),
    )
    op.create_table(
        "enterprise_latest",
        sa.Column("enterprise_id", sa.String(200), primary_key=True),
        sa.Column("tier", sa.SmallInteger(), nullable=False),
        sa.Column("previous_tier", sa.SmallInteger(), nullable=True),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.Column("high_since", sa.DateTime(), nullable=True),
        sqlite_with_rowid=False,  # the key is the table: one B-tree to update, not a rowid table and an index
    )
    op.create_index("ix_enterprise_latest_high_since", "enterprise_latest", ["high_since"])
    op.create_table(
        "officer_assignments",
        sa.Column("officer_key_id", sa.String(64), primary_key=True),
        sa.Column("enterprise_id", sa.String(200), primary_key=True),
        sa.Column("officer_holder", sa.String(100), nullable=False, server_default=""),
        sa.Column("assigned_by", sa.String(300), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_officer_assignments_enterprise", "officer_assignments", ["enterprise_id"])
    op.create_table(
        "unions",
        sa.Column("union_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("union_type", sa.String(32), nullable=False),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("members", sa.Integer(), nullable=False),
        *[sa.Column(f"{group}_members", sa.Integer(), nullable=False, server_default="0") for group in FOCUS_GROUPS],
        sa.Column("grade", sa.SmallInteger(), nullable=True),
        sa.Column("layer", sa.String(16), nullable=True),
        sa.Column("points", sa.Float(), nullable=True),
        sa.Column("factors", sa.JSON(), nullable=True),
        sa.Column("graded_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_unions_grade", "unions", ["grade", "layer"])
    op.create_index("ix_unions_district", "unions", ["district"])
    op.create_table(
        "union_enterprises",
        sa.Column("union_id", sa.String(64), sa.ForeignKey("unions.union_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("enterprise_id", sa.String(200), primary_key=True),
    )
    op.create_index("ix_union_enterprises_enterprise", "union_enterprises", ["enterprise_id"])
    op.create_table(
        "union_grade_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("grading_sha256", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column("unions_graded", sa.Integer(), nullable=False),
        sa.Column("grades_changed", sa.Integer(), nullable=False),
    )
    op.create_table(
        "union_grades",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("union_grade_runs.id"), nullable=False),
        sa.Column("union_id", sa.String(64), sa.ForeignKey("unions.union_id", ondelete="CASCADE"), nullable=False),
        sa.Column("grade", sa.SmallInteger(), nullable=False),
        sa.Column("previous_grade", sa.SmallInteger(), nullable=True),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("graded_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_union_grades_union", "union_grades", ["union_id", "graded_at"])
    op.create_index("ix_union_grades_graded_at", "union_grades", ["graded_at"])


def downgrade() -> None:
    for table in (
        "union_grades",
        "union_grade_runs",
        "union_enterprises",
        "unions",
        "officer_assignments",
        "enterprise_latest",
        "enterprise_scores",
    ):
        op.drop_table(table)
