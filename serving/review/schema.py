"""The review store's tables (SQLAlchemy Core). Migrations in serving/db/migrations/versions/ create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

cases = sa.Table(
    "review_cases",
    metadata,
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
    sa.Column("reporter", sa.String(64), nullable=True),  # a pseudonym only (migration 0004)
    sa.Column("width", sa.Integer(), nullable=False),
    sa.Column("height", sa.Integer(), nullable=False),
    sa.Column("dhash", sa.String(16), nullable=False),
    *[sa.Column(f"dhash_band{index}", sa.Integer(), nullable=True) for index in range(5)],  # migration 0005
    sa.Column("group_id", sa.String(32), nullable=False),
    sa.Column("decided_at", sa.DateTime(), nullable=True),
    sa.Column("decision_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("detections", sa.JSON(), nullable=True),  # [{type, score, box}] (migration 0007)
)

case_flags = sa.Table(
    "review_case_flags",
    metadata,
    sa.Column("photo_id", sa.String(32), sa.ForeignKey("review_cases.photo_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("hazard", sa.String(64), primary_key=True),
)

decisions = sa.Table(
    "review_decisions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("photo_id", sa.String(32), sa.ForeignKey("review_cases.photo_id", ondelete="CASCADE"), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("hazards", sa.JSON(), nullable=False),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("reviewer_key_id", sa.String(64), nullable=False),  # who decided: the signed-in key (0006)
    sa.Column("reviewer_holder", sa.String(100), nullable=True),  # and the person holding it
    sa.Column("legacy_reviewer", sa.String(200), nullable=True),  # free text of decisions before 0006
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("via_photo_id", sa.String(32), nullable=True),
)
