"""Safety officers' review workflow: cases, the urgency queue, decisions, near-duplicate groups.

Serving-side only (SQLAlchemy, Alembic, numpy, Pillow, Starlette); `training.reviews` exports
the decisions as training labels.
"""

from serving.review.decisions import DECISIONS, Decision, parse_decision
from serving.review.settings import ReviewSettings
from serving.review.store import ReviewStore

__all__ = ["DECISIONS", "Decision", "ReviewSettings", "ReviewStore", "parse_decision"]
