"""Workers' claims (职工诉求一张网, serving/claims/): claims from every channel, the cases that group
them, the cases' append-only transitions, and the feedback workers give through their receipts
(for claims and photo reports alike).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claim_cases",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("enterprise_id", sa.String(200), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("district", sa.String(200), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("handler", sa.String(32), nullable=True),
        sa.Column("officer", sa.String(300), nullable=True),
        sa.Column("claimants", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("workers", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("amount_cny", sa.Float(), nullable=False, server_default="0"),
        sa.Column("urgency", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("enterprise_visible", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("reopen_count", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("escalation_level", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("supervision_order_id", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(24), nullable=True),
        sa.Column("recovered_cny", sa.Float(), nullable=True),
        sa.Column("injury_recognised", sa.Boolean(), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("last_claim_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("transition_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_claim_cases_grouping", "claim_cases", ["enterprise_id", "type", "last_claim_at"])
    op.create_index("ix_claim_cases_queue", "claim_cases", ["state", "urgency", "opened_at"])
    op.create_index("ix_claim_cases_due", "claim_cases", ["state", "due_at"])
    op.create_index("ix_claim_cases_updated", "claim_cases", ["updated_at"])
    op.create_table(
        "claims",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("case_id", sa.String(32), sa.ForeignKey("claim_cases.id"), nullable=False),
        sa.Column("channel", sa.String(24), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("enterprise_id", sa.String(200), nullable=False),
        sa.Column("district", sa.String(200), nullable=True),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("amount_cny", sa.Float(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("claimant", sa.String(64), nullable=True),
        sa.Column("receipt_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("received_by", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_claims_case", "claims", ["case_id"])
    op.create_index("ix_claims_enterprise_created", "claims", ["enterprise_id", "created_at"])
    op.create_index("ix_claims_created", "claims", ["created_at"])
    op.create_index("ix_claims_channel_case", "claims", ["channel", "case_id"])
    op.create_table(
        "claim_transitions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(32), sa.ForeignKey("claim_cases.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_claim_transitions_case", "claim_transitions", ["case_id"])
    op.create_table(
        "report_feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("claim_id", sa.String(32), sa.ForeignKey("claims.id"), nullable=True),
        sa.Column("photo_id", sa.String(32), sa.ForeignKey("review_cases.photo_id"), nullable=True),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("round", sa.SmallInteger(), nullable=False),
        sa.Column("satisfied", sa.SmallInteger(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("claim_id", "round", name="uq_feedback_claim_round"),
        sa.UniqueConstraint("photo_id", "round", name="uq_feedback_photo_round"),
    )
    op.create_index("ix_feedback_case", "report_feedback", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_case", table_name="report_feedback")
    op.drop_table("report_feedback")
    op.drop_index("ix_claim_transitions_case", table_name="claim_transitions")
    op.drop_table("claim_transitions")
    for name in ("ix_claims_channel_case", "ix_claims_created", "ix_claims_enterprise_created", "ix_claims_case"):
        op.drop_index(name, table_name="claims")
    op.drop_table("claims")
    for name in ("ix_claim_cases_updated", "ix_claim_cases_due", "ix_claim_cases_queue", "ix_claim_cases_grouping"):
        op.drop_index(name, table_name="claim_cases")
    op.drop_table("claim_cases")
