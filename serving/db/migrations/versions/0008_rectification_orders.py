"""Rectification orders (整改单) and supervision cases (督办), their append-only transitions, the
webhook outbox and reporters' receipt codes (serving/orders/).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rectification_orders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("photo_id", sa.String(32), sa.ForeignKey("review_cases.photo_id"), nullable=True, unique=True),
        sa.Column("enterprise_id", sa.String(200), nullable=False),
        sa.Column("site_id", sa.String(200), nullable=True),
        sa.Column("district", sa.String(200), nullable=True),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("officer", sa.String(200), nullable=False),
        sa.Column("measures", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("hazard", sa.String(64), nullable=True),
        sa.Column("hazards", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("major", sa.Boolean(), nullable=False),
        sa.Column("risk_tier", sa.SmallInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("escalation_level", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("rectified_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("original_probability", sa.Float(), nullable=True),
        sa.Column("proof_sha256", sa.String(64), nullable=True),
        sa.Column("proof_probabilities", sa.JSON(), nullable=True),
        sa.Column("transition_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_orders_state_due", "rectification_orders", ["state", "due_at"])
    op.create_index("ix_orders_enterprise", "rectification_orders", ["enterprise_id", "state"])
    op.create_index("ix_orders_created", "rectification_orders", ["created_at"])
    op.create_index("ix_orders_updated", "rectification_orders", ["updated_at"])
    op.create_table(
        "order_transitions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(32), sa.ForeignKey("rectification_orders.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_order_transitions_order_id", "order_transitions", ["order_id"])
    op.create_table(
        "order_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_outbox_pending", "order_outbox", ["delivered_at", "next_attempt_at"])
    op.create_table(
        "report_receipts",
        sa.Column("code_sha256", sa.String(64), primary_key=True),
        sa.Column("photo_id", sa.String(32), sa.ForeignKey("review_cases.photo_id"), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("report_receipts")
    op.drop_index("ix_outbox_pending", table_name="order_outbox")
    op.drop_table("order_outbox")
    op.drop_index("ix_order_transitions_order_id", table_name="order_transitions")
    op.drop_table("order_transitions")
    for name in ("ix_orders_updated", "ix_orders_created", "ix_orders_enterprise", "ix_orders_state_due"):
        op.drop_index(name, table_name="rectification_orders")
    op.drop_table("rectification_orders")
