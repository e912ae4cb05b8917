"""Tables of unions, the enterprises they cover, grade runs and grade history (SQLAlchemy Core), in the
review store's database. Created by migration 0011 in serving/review/migrations/versions/."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

FOCUS_GROUPS = ("industrial", "new_employment", "migrant")  # 产业工人, 新就业形态劳动者, 农民工

unions = sa.Table(
    "unions",
    metadata,
    sa.Column("union_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("union_type", sa.String(32), nullable=False),  # datasets/labor_risk/schema.yaml union_type
    sa.Column("district", sa.String(100), nullable=False),
    sa.Column("parent_id", sa.String(64), nullable=True),
    sa.Column("members", sa.Integer(), nullable=False),
    *[sa.Column(f"{group}_members", sa.Integer(), nullable=False, server_default="0") for group in FOCUS_GROUPS],
    sa.Column("grade", sa.SmallInteger(), nullable=True),  # the latest run's, null before the first
    sa.Column("layer", sa.String(16), nullable=True),
    sa.Column("points", sa.Float(), nullable=True),
    sa.Column("factors", sa.JSON(), nullable=True),
    sa.Column("graded_at", sa.DateTime(), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Index("ix_unions_grade", "grade", "layer"),
    sa.Index("ix_unions_district", "district"),
)

coverage = sa.Table(
    "union_enterprises",
    metadata,
    sa.Column("union_id", sa.String(64), sa.ForeignKey("unions.union_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("enterprise_id", sa.String(200), primary_key=True),
    sa.Index("ix_union_enterprises_enterprise", "enterprise_id"),
)

grade_runs = sa.Table(
    "union_grade_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("actor", sa.String(300), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # api | batch
    sa.Column("grading_sha256", sa.String(64), nullable=False),  # of datasets/unions/grading.yaml
    sa.Column("started_at", sa.DateTime(), nullable=False),
    sa.Column("finished_at", sa.DateTime(), nullable=False),
    sa.Column("unions_graded", sa.Integer(), nullable=False),
    sa.Column("grades_changed", sa.Integer(), nullable=False),
)

grade_history = sa.Table(
    "union_grades",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("union_grade_runs.id"), nullable=False),
    sa.Column("union_id", sa.String(64), sa.ForeignKey("unions.union_id", ondelete="CASCADE"), nullable=False),
    sa.Column("grade", sa.SmallInteger(), nullable=False),
    sa.Column("previous_grade", sa.SmallInteger(), nullable=True),
    sa.Column("layer", sa.String(16), nullable=False),
    sa.Column("points", sa.Float(), nullable=False),
    sa.Column("factors", sa.JSON(), nullable=False),
    sa.Column("graded_at", sa.DateTime(), nullable=False),
    sa.Index("ix_union_grades_union", "union_id", "graded_at"),
    sa.Index("ix_union_grades_graded_at", "graded_at"),
)
