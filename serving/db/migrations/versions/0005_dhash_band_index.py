"""Index the near-duplicate lookup by dHash bands, so grouping a new photo stays fast as cases grow.

Before this, grouping read the hash of every case of the last 30 days (39 ms per write at 10,000
cases); now it reads only cases sharing one of five 13/12-bit bands (serving/review/grouping.py).
Existing rows are backfilled from their stored hash.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BAND_WIDTHS = (13, 13, 13, 13, 12)  # a copy: a migration must not change when the code does


def bands_of(hex_hash: str) -> list[int]:
    value, shift, bands = int(hex_hash, 16), 64, []
    for width in BAND_WIDTHS:
        shift -= width
        bands.append((value >> shift) & ((1 << width) - 1))
    return bands


def upgrade() -> None:
    for index in range(len(BAND_WIDTHS)):
        op.add_column("review_cases", sa.Column(f"dhash_band{index}", sa.Integer(), nullable=True))
    table = sa.table(
        "review_cases",
        sa.column("photo_id"),
        sa.column("dhash"),
        *[sa.column(f"dhash_band{index}") for index in range(len(BAND_WIDTHS))],
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(table.c.photo_id, table.c.dhash)).all()
    if rows:  # one executemany, not a round trip per case
        update = (
            table.update()
            .where(table.c.photo_id == sa.bindparam("case_id"))
            .values({f"dhash_band{index}": sa.bindparam(f"band{index}") for index in range(len(BAND_WIDTHS))})
        )
        connection.execute(
            update,
            [
                {"case_id": row.photo_id, **{f"band{index}": band for index, band in enumerate(bands_of(row.dhash))}}
                for row in rows
            ],
        )
    for index in range(len(BAND_WIDTHS)):
        op.create_index(f"ix_review_cases_band{index}", "review_cases", [f"dhash_band{index}", "created_at"])


def downgrade() -> None:
    for index in range(len(BAND_WIDTHS)):
        op.drop_index(f"ix_review_cases_band{index}", table_name="review_cases")
        op.drop_column("review_cases", f"dhash_band{index}")
