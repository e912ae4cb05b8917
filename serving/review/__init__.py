"""Safety officers' review workflow: cases, the urgency queue, decisions, near-duplicate groups.

Serving-side only (SQLAlchemy, Alembic, numpy, Pillow, Starlette): `store.ReviewStore` keeps
cases and decisions, `app` serves the queue API (/v1/review) and the page (/review);
`export` writes the decisions as training labels (`ankang export reviews`).
"""
