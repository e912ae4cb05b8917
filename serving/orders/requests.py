"""What a request to the order API may say, checked before anything is written (InputError names the field)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import InputError
from runtime.taxonomy import load_taxonomy
from serving.hostile_text import normalised_id
from serving.orders.states import ACTIONS, KINDS, STATES, UNRECTIFIED_STATES
from serving.review.queue import integer_param

MAX_TEXT, MAX_LONG_TEXT, MAX_LIMIT = 200, 4000, 500
ID_FIELDS = frozenset({"photo_id", "enterprise_id", "site_id"})  # normalised: serving/hostile_text.normalised_id
# Times a rectification may be due at: 0001-01-01+01:00 or 9999-12-31-14:00 have no UTC year to be stored in.
EARLIEST_TIME, LATEST_TIME = dt.datetime(2000, 1, 1), dt.datetime(2200, 1, 1)
STATE_CHOICES = STATES + ("unrectified", "all")


@dataclass(frozen=True)
class NewOrder:
    photo_id: str
    enterprise_id: str
    site_id: str | None
    district: str | None
    assignee: str | None
    measures: str | None
    hazard: str | None
    due_at: dt.datetime | None


@dataclass(frozen=True)
class NewSupervision:
    enterprise_id: str
    risk_tier: int
    officer: str | None
    district: str | None
    notes: str | None
    due_at: dt.datetime | None


@dataclass(frozen=True)
class Move:
    action: str
    comment: str | None
    outcome: str | None


@dataclass(frozen=True)
class OrderFilter:
    state: str = "unrectified"
    kind: str | None = None
    enterprise_id: str | None = None
    site: str | None = None
    district: str | None = None
    hazard: str | None = None
    overdue: bool = False
    limit: int = 50
    offset: int = 0

    @property
    def states(self) -> tuple[str, ...] | None:
        if self.state == "all":
            return None
        return UNRECTIFIED_STATES if self.state == "unrectified" else (self.state,)


def text(body: Mapping[str, Any], field: str, *, required: bool = False, limit: int = MAX_TEXT) -> str | None:
    value = body.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(field, f"`{field}` is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InputError(field, f"{field} must be text of at most {limit} characters")
    if field in ID_FIELDS:
        return normalised_id(field, value) or _required_or_none(field, required)
    return value.strip()


def _required_or_none(field: str, required: bool) -> None:
    if required:
        raise InputError(field, f"`{field}` is required (it held only invisible characters)")
    return None


def moment(value: Any, field: str) -> dt.datetime | None:
    """An ISO 8601 time (UTC if no offset is given) as naive UTC, or None."""
    if value in (None, ""):
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(field, f"{value!r} is not a time; use ISO 8601, e.g. 2026-12-09T17:00:00Z") from None
    try:
        utc = parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    except OverflowError:  # the offset moves it out of years 1..9999
        utc = None
    if utc is None or not EARLIEST_TIME <= utc < LATEST_TIME:
        raise InputError(field, f"{value!r} is out of range; give a time between 2000 and 2199")
    return utc


def _object(body: Any, example: str) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise InputError("body", f"send a JSON object such as {example}")
    return body


def parse_new_order(body: Any) -> NewOrder:
    body = _object(body, '{"photo_id": "...", "enterprise_id": "E100", "assignee": "...", "measures": "..."}')
    hazard = text(body, "hazard")
    if hazard is not None and hazard not in load_taxonomy():
        raise InputError("hazard", f"unknown hazard type {hazard!r}; known types: {sorted(load_taxonomy())}")
    return NewOrder(
        photo_id=text(body, "photo_id", required=True),
        enterprise_id=text(body, "enterprise_id", required=True),
        site_id=text(body, "site_id"),
        district=text(body, "district"),
        assignee=text(body, "assignee"),
        measures=text(body, "measures", limit=MAX_LONG_TEXT),
        hazard=hazard,
        due_at=moment(body.get("due_at"), "due_at"),
    )


def parse_new_supervision(body: Any) -> NewSupervision:
    body = _object(body, '{"enterprise_id": "E100", "risk_tier": 4, "officer": "...", "notes": "..."}')
    tier = body.get("risk_tier")
    if isinstance(tier, bool) or not isinstance(tier, int) or not 1 <= tier <= 5:
        raise InputError("risk_tier", f"risk_tier must be a whole number from 1 to 5, not {tier!r}")
    return NewSupervision(
        enterprise_id=text(body, "enterprise_id", required=True),
        risk_tier=tier,
        officer=text(body, "officer"),
        district=text(body, "district"),
        notes=text(body, "notes", limit=MAX_LONG_TEXT),
        due_at=moment(body.get("due_at"), "due_at"),
    )


def parse_move(body: Any) -> Move:
    body = _object(body, '{"action": "start", "comment": "..."}')
    action = body.get("action")
    if action not in ACTIONS:
        raise InputError("action", f"unknown action {action!r}; use one of {list(ACTIONS)}")
    return Move(
        action=action,
        comment=text(body, "comment", limit=MAX_LONG_TEXT),
        outcome=text(body, "outcome", limit=MAX_LONG_TEXT),
    )


def _id_param(params: Mapping[str, str], field: str) -> str | None:
    value = params.get(field)
    return normalised_id(field, value) or None if value else None


def parse_filter(params: Mapping[str, str]) -> OrderFilter:
    state = params.get("state") or "unrectified"
    if state not in STATE_CHOICES:
        raise InputError("state", f"unknown state {state!r}; use one of {list(STATE_CHOICES)}")
    kind = params.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise InputError("kind", f"unknown kind {kind!r}; use one of {list(KINDS)}")
    overdue = params.get("overdue", "false").lower()
    if overdue not in ("true", "false", "1", "0"):
        raise InputError("overdue", f"overdue must be true or false, not {params.get('overdue')!r}")
    return OrderFilter(
        state=state,
        kind=kind,
        enterprise_id=_id_param(params, "enterprise_id"),
        site=_id_param(params, "site"),
        district=params.get("district") or None,
        hazard=params.get("hazard") or None,
        overdue=overdue in ("true", "1"),
        limit=max(1, integer_param(params, "limit", 50, low=0, high=MAX_LIMIT)),
        offset=integer_param(params, "offset", 0, low=0, high=10_000_000),
    )


AMENDABLE = {
    "assignee": MAX_TEXT,
    "officer": MAX_TEXT,
    "district": MAX_TEXT,
    "measures": MAX_LONG_TEXT,
    "notes": MAX_LONG_TEXT,
}


def parse_amendment(body: Any) -> tuple[dict[str, Any], str | None]:
    """(columns to change, comment) from a PATCH body; at least one amendable field."""
    body = _object(body, '{"assignee": "...", "due_at": "2026-12-09T17:00:00Z", "comment": "..."}')
    unknown = sorted(set(body) - set(AMENDABLE) - {"due_at", "comment"})
    if unknown:
        raise InputError(unknown[0], f"cannot amend {unknown}; amendable: {sorted([*AMENDABLE, 'due_at'])}")
    changes: dict[str, Any] = {name: text(body, name, limit=limit) for name, limit in AMENDABLE.items() if name in body}
    if "officer" in changes and changes["officer"] is None:
        raise InputError("officer", "an order always has a responsible officer; name the new one")
    if "due_at" in body:
        changes["due_at"] = moment(body["due_at"], "due_at")
        if changes["due_at"] is None:
            raise InputError("due_at", "due_at cannot be removed, only moved")
    if not changes:
        raise InputError("body", f"say what to amend: one of {sorted([*AMENDABLE, 'due_at'])}")
    return changes, text(body, "comment", limit=MAX_LONG_TEXT)
