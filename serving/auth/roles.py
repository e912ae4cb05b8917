"""Roles and which paths need them."""

from __future__ import annotations

import posixpath
import re

ROLES = ("intake", "reviewer", "admin", "enterprise", "informant")  # enterprise: a key bound to one enterprise_id
# informant: a union's named early-warning informant (劳动关系信息员): files workers' claims only
PERSONAL_ROLES = ("reviewer", "admin", "informant")  # credentials of people: they carry the holder's name
CLAIM_ROLES = ("intake", "informant", "enterprise", "reviewer", "admin")  # serving/claims/app.py sorts them out
# First match wins; anything else under /v1 is admin-only so a new endpoint is never open by accident.
# None: open to anyone (a reporter's receipt lookup, rate limited by serving/orders/app.py).
ROUTE_ROLES: tuple[tuple[str, str | None], ...] = (
    ("/v1/photos", "intake"),
    ("/v1/enterprises/score", "intake"),
    ("/v1/enterprises/score-file", "intake"),
    ("/v1/enterprises", "enterprise"),  # kept scores: officers too; serving/unions/api.py scopes enterprise keys
    ("/v1/unions", "reviewer"),  # changes and grading: admin (serving/unions/api.py)
    ("/v1/review-meeting", "reviewer"),
    ("/unions", "reviewer"),
    ("/v1/review", "reviewer"),
    ("/review", "reviewer"),
    ("/v1/reports", None),
    ("/v1/orders", "enterprise"),  # officers too (role_allows); serving/orders/app.py scopes enterprise keys
    ("/orders", "enterprise"),  # the dashboard is for officers (serving/orders/pages.py); an enterprise its own orders
    ("/v1/claims", "claims"),  # filing: intake and informant keys; reading: officers, enterprises (their own)
    ("/claims", "reviewer"),
    ("/v1/admin", "admin"),
    ("/v1", "admin"),
)


def _role_of(path: str) -> str | None:
    for prefix, role in ROUTE_ROLES:
        if path == prefix or path.startswith(prefix + "/"):
            return role
    return None


def required_role(path: str) -> str | None:
    """The role a path needs, or None when it is open (health, metrics, docs).

    Also judged after collapsing slashes and dot segments, as a proxy in front might: when the two
    readings disagree (`//v1/review`, `/review/../v1/admin`) only admin may pass.
    """
    raw = _role_of(path)
    normalised = _role_of(posixpath.normpath("/" + re.sub(r"/+", "/", path).lstrip("/")))
    return raw if raw == normalised else "admin"


def role_allows(role: str, needed: str) -> bool:
    """Admin may do everything; reviewers (union officers) also what enterprise keys may; the claims
    routes take every role but admit each to its own part (serving/claims/app.py)."""
    if needed == "claims":
        return role in CLAIM_ROLES
    return role == needed or role == "admin" or (needed == "enterprise" and role == "reviewer")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role
