"""The order store's tables (SQLAlchemy Core), in the review store's database so orders can refer to
cases. Created by migration 0008 in serving/db/migrations/versions/ (one Alembic history)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

orders = sa.Table(
    "rectification_orders",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # rectification (整改) | supervision (督办)
    sa.Column("photo_id", sa.String(32), sa.ForeignKey("review_cases.photo_id"), nullable=True, unique=True),
    sa.Column("enterprise_id", sa.String(200), nullable=False),
    sa.Column("site_id", sa.String(200), nullable=True),
    sa.Column("district", sa.String(200), nullable=True),
    sa.Column("assignee", sa.String(200), nullable=True),
    sa.Column("officer", sa.String(200), nullable=False),  # the responsible officer
    sa.Column("measures", sa.Text(), nullable=True),
    sa.Column("notes", sa.Text(), nullable=True),
    sa.Column("outcome", sa.Text(), nullable=True),
    sa.Column("hazard", sa.String(64), nullable=True),  # the hazard compared before / after
    sa.Column("hazards", sa.JSON(), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("major", sa.Boolean(), nullable=False),
    sa.Column("risk_tier", sa.SmallInteger(), nullable=True),  # supervision: the tier that opened it
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("escalation_level", sa.SmallInteger(), nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("due_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("rectified_at", sa.DateTime(), nullable=True),  # when verified
    sa.Column("closed_at", sa.DateTime(), nullable=True),
    sa.Column("original_probability", sa.Float(), nullable=True),
    sa.Column("proof_sha256", sa.String(64), nullable=True),
    sa.Column("proof_probabilities", sa.JSON(), nullable=True),
    sa.Column("transition_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Index("ix_orders_state_due", "state", "due_at"),
    sa.Index("ix_orders_enterprise", "enterprise_id", "state"),
    sa.Index("ix_orders_created", "created_at"),
    sa.Index("ix_orders_updated", "updated_at"),  # the dashboard cache's change stamp
)

transitions = sa.Table(
    "order_transitions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(32), sa.ForeignKey("rectification_orders.id"), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(300), nullable=False),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("details", sa.JSON(), nullable=True),  # proof photo and its assessment, escalation level
    sa.Column("created_at", sa.DateTime(), nullable=False),
)

outbox = sa.Table(
    "order_outbox",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(32), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("delivered_at", sa.DateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),
)

receipts = sa.Table(
    "report_receipts",
    metadata,
    sa.Column("code_sha256", sa.String(64), primary_key=True),  # the code itself is never stored
    sa.Column("photo_id", sa.String(32), sa.ForeignKey("review_cases.photo_id"), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
)
