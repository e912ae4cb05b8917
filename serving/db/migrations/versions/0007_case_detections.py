"""Cases keep the photo model's detection boxes, so the review page can draw them on the photo.

`detections` is a JSON list of {type, score, box: [x0, y0, x1, y1]} in the uploaded photo's pixels
after EXIF orientation (`serving.assessment.Detection`); NULL for cases assessed before boxes existed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("review_cases", sa.Column("detections", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("review_cases", "detections")
