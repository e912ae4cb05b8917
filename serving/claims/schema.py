"""The claims tables (SQLAlchemy Core), in the review store's database beside the orders: workers'
claims, the cases that group them, the cases' append-only transitions and the workers' feedback
given through their receipts. Created by migration 0012 (one Alembic history with the review store)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

claim_cases = sa.Table(
    "claim_cases",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("enterprise_id", sa.String(200), nullable=False),
    sa.Column("type", sa.String(24), nullable=False),
    sa.Column("district", sa.String(200), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),  # accepted | dispatched | handled | closed
    sa.Column("handler", sa.String(32), nullable=True),  # an id of datasets/claims/policy.yaml handlers
    sa.Column("officer", sa.String(300), nullable=True),  # who dispatched it last
    sa.Column("claimants", sa.Integer(), nullable=False, server_default="0"),  # claims in the case
    sa.Column("workers", sa.Integer(), nullable=False, server_default="0"),  # workers affected, summed
    sa.Column("amount_cny", sa.Float(), nullable=False, server_default="0"),  # amounts claimed, summed
    sa.Column("urgency", sa.SmallInteger(), nullable=False, server_default="0"),  # queue order, policy.py
    sa.Column("enterprise_visible", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("reopen_count", sa.SmallInteger(), nullable=False, server_default="0"),
    sa.Column("escalation_level", sa.SmallInteger(), nullable=False, server_default="0"),
    sa.Column("supervision_order_id", sa.String(32), nullable=True),  # 督办 after too many reopenings
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
    sa.Index("ix_claim_cases_grouping", "enterprise_id", "type", "last_claim_at"),
    sa.Index("ix_claim_cases_queue", "state", "urgency", "opened_at"),
    sa.Index("ix_claim_cases_due", "state", "due_at"),
    sa.Index("ix_claim_cases_updated", "updated_at"),
)

claims = sa.Table(
    "claims",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("case_id", sa.String(32), sa.ForeignKey("claim_cases.id"), nullable=False),
    sa.Column("channel", sa.String(24), nullable=False),
    sa.Column("type", sa.String(24), nullable=False),
    sa.Column("enterprise_id", sa.String(200), nullable=False),
    sa.Column("district", sa.String(200), nullable=True),
    sa.Column("workers", sa.Integer(), nullable=False),
    sa.Column("amount_cny", sa.Float(), nullable=True),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("claimant", sa.String(64), nullable=True),  # a keyed pseudonym only (serving.auth.pseudonymise)
    sa.Column("receipt_sha256", sa.String(64), nullable=False, unique=True),  # the code itself is never stored
    sa.Column("received_by", sa.String(300), nullable=False),  # the intake or informant key
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Index("ix_claims_case", "case_id"),
    sa.Index("ix_claims_enterprise_created", "enterprise_id", "created_at"),
    sa.Index("ix_claims_created", "created_at"),
    sa.Index("ix_claims_channel_case", "channel", "case_id"),  # the queue's channel filter
)

claim_transitions = sa.Table(
    "claim_transitions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(32), sa.ForeignKey("claim_cases.id"), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(300), nullable=False),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("details", sa.JSON(), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Index("ix_claim_transitions_case", "case_id"),
)

report_feedback = sa.Table(
    "report_feedback",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("claim_id", sa.String(32), sa.ForeignKey("claims.id"), nullable=True),
    sa.Column("photo_id", sa.String(32), sa.ForeignKey("review_cases.photo_id"), nullable=True),
    sa.Column("case_id", sa.String(32), nullable=False),  # the claim case, or the photo's order
    sa.Column("round", sa.SmallInteger(), nullable=False),  # which closing it answers (0, then after reopenings)
    sa.Column("satisfied", sa.SmallInteger(), nullable=False),  # 1..5
    sa.Column("resolved", sa.Boolean(), nullable=False),
    sa.Column("comment", sa.Text(), nullable=True),  # shown to officers only
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.UniqueConstraint("claim_id", "round", name="uq_feedback_claim_round"),
    sa.UniqueConstraint("photo_id", "round", name="uq_feedback_photo_round"),
    sa.Index("ix_feedback_case", "case_id"),
)
