"""Decisions record who decided as the signed-in credential: its key id and the person holding it.

Before this, `reviewer` was free text a page or client declared (`王工 [key:ab12cd34]`). It stays,
renamed `legacy_reviewer`, for the decisions made before; new decisions never write it. Their key id
is recovered from the `[key:…]` or `key:…` the old text carried, else `legacy`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_KEY_IN_TEXT = re.compile(r"(?:^|\[)key:([A-Za-z0-9_-]{1,64})\]?$")


def legacy_key_id(reviewer: str) -> str:
    match = _KEY_IN_TEXT.search(reviewer.strip())
    return match.group(1) if match else "legacy"


def upgrade() -> None:
    with op.batch_alter_table("review_decisions") as batch:
        batch.alter_column("reviewer", new_column_name="legacy_reviewer", existing_type=sa.String(200), nullable=True)
        batch.add_column(sa.Column("reviewer_key_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reviewer_holder", sa.String(100), nullable=True))
    decisions = sa.table(
        "review_decisions",
        sa.column("id", sa.Integer()),
        sa.column("legacy_reviewer", sa.String()),
        sa.column("reviewer_key_id", sa.String()),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(decisions.c.id, decisions.c.legacy_reviewer)).all()
    if rows:
        connection.execute(
            decisions.update()
            .where(decisions.c.id == sa.bindparam("row_id"))
            .values(reviewer_key_id=sa.bindparam("key_id")),
            [{"row_id": row.id, "key_id": legacy_key_id(row.legacy_reviewer or "")} for row in rows],
        )
    with op.batch_alter_table("review_decisions") as batch:
        batch.alter_column("reviewer_key_id", existing_type=sa.String(64), nullable=False)


def downgrade() -> None:
    decisions = sa.table(
        "review_decisions",
        sa.column("legacy_reviewer", sa.String()),
        sa.column("reviewer_key_id", sa.String()),
        sa.column("reviewer_holder", sa.String()),
    )
    label = sa.func.coalesce(decisions.c.reviewer_holder + " ", "") + "[key:" + decisions.c.reviewer_key_id + "]"
    op.get_bind().execute(decisions.update().where(decisions.c.legacy_reviewer.is_(None)).values(legacy_reviewer=label))
    with op.batch_alter_table("review_decisions") as batch:
        batch.drop_column("reviewer_holder")
        batch.drop_column("reviewer_key_id")
        batch.alter_column("legacy_reviewer", new_column_name="reviewer", existing_type=sa.String(200), nullable=False)
