"""Tables of kept enterprise scores and officer assignments (SQLAlchemy Core), in the review store's
database. Created by migration 0011 in serving/review/migrations/versions/."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

TIERS = (1, 2, 3, 4, 5)

# One row per score of one enterprise, from any path (source: api | file | batch). Append-only.
scores = sa.Table(
    "enterprise_scores",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("enterprise_id", sa.String(200), nullable=False),
    sa.Column("tier", sa.SmallInteger(), nullable=False),
    sa.Column("model_tier", sa.SmallInteger(), nullable=False),
    *[sa.Column(f"p_tier_{tier}", sa.Float(), nullable=False) for tier in TIERS],
    sa.Column("reasons", sa.Text(), nullable=False, server_default=""),  # ';'-joined fields, strongest first
    sa.Column("rules_fired", sa.Text(), nullable=False, server_default=""),  # ';'-joined policy floor ids
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("model_version", sa.String(100), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("profile_fingerprint", sa.String(64), nullable=False),
    sa.Column("scored_at", sa.DateTime(), nullable=False),
    sa.Index("ix_enterprise_scores_enterprise", "enterprise_id", "scored_at"),
    # the weekly trend reads only high scores by time: a partial index, a fraction of the rows to maintain
    sa.Index(
        "ix_enterprise_scores_high_at",
        "scored_at",
        sqlite_where=sa.text("tier >= 4"),
        postgresql_where=sa.text("tier >= 4"),
    ),
)

# The latest score of each enterprise, kept beside the log so grading 5 million enterprises reads one
# row each. `high_since`: when the enterprise reached tier >= 4 without dropping below since (the weekly
# review's "newly at tier >= 4"); `previous_tier`: the tier before the latest score.
latest = sa.Table(
    "enterprise_latest",
    metadata,
    sa.Column("enterprise_id", sa.String(200), primary_key=True),
    sa.Column("tier", sa.SmallInteger(), nullable=False),
    sa.Column("previous_tier", sa.SmallInteger(), nullable=True),
    sa.Column("scored_at", sa.DateTime(), nullable=False),
    sa.Column("high_since", sa.DateTime(), nullable=True),
    sa.Index("ix_enterprise_latest_high_since", "high_since"),
    sqlite_with_rowid=False,  # the key is the table: one B-tree to update, not a rowid table and an index
)

# 挂点: an officer (a reviewer or admin key) assigned to an enterprise.
assignments = sa.Table(
    "officer_assignments",
    metadata,
    sa.Column("officer_key_id", sa.String(64), primary_key=True),
    sa.Column("enterprise_id", sa.String(200), primary_key=True),
    sa.Column("officer_holder", sa.String(100), nullable=False, server_default=""),
    sa.Column("assigned_by", sa.String(300), nullable=False),
    sa.Column("assigned_at", sa.DateTime(), nullable=False),
    sa.Index("ix_officer_assignments_enterprise", "enterprise_id"),
)
