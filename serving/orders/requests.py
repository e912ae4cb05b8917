"""What a request to the order API may say, checked before anything is written (InputError names the field):
the JSON bodies as models (FastAPI validates them before the route runs) and the list's query filter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema, model_validator

from runtime.errors import InputError
from runtime.taxonomy import load_taxonomy
from serving.api.bodies import RequestBody
from serving.api_models import OrderAction, example, long_text, short_text
from serving.hostile_text import normalised_id
from serving.orders.states import ACTIONS, KINDS, STATES, UNRECTIFIED_STATES
from serving.review.queue import integer_param

MAX_TEXT, MAX_LONG_TEXT, MAX_LIMIT = 200, 4000, 500
ID_FIELDS = frozenset({"photo_id", "enterprise_id", "site_id"})  # normalised: serving/hostile_text.normalised_id
# Times a rectification may be due at: 0001-01-01+01:00 or 9999-12-31-14:00 have no UTC year to be stored in.
EARLIEST_TIME, LATEST_TIME = dt.datetime(2000, 1, 1), dt.datetime(2200, 1, 1)
STATE_CHOICES = STATES + ("unrectified", "all")


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


# --- the JSON bodies of the order routes: each field read by `text` / `moment` above ---------------


def read_text(*, required: bool = False, limit: int = MAX_TEXT) -> BeforeValidator:
    """A field read by `text`: stripped (an id normalised), null or blank is None (refused when required)."""

    def read(value: Any, info: ValidationInfo) -> str | None:
        return text({info.field_name: value}, info.field_name, required=required, limit=limit)

    return BeforeValidator(read)


def _read_moment(value: Any, info: ValidationInfo) -> dt.datetime | None:
    return moment(value, info.field_name)


def _known_hazard(hazard: str | None) -> str | None:
    if hazard is not None and hazard not in load_taxonomy():
        raise InputError("hazard", f"unknown hazard type {hazard!r}; known types: {sorted(load_taxonomy())}")
    return hazard


def _action(action: Any) -> Any:
    if not isinstance(action, str) or action not in ACTIONS:  # a list or object is not a key (it was a 500)
        raise InputError("action", f"unknown action {action!r}; use one of {list(ACTIONS)}")
    return action


def _risk_tier(tier: Any) -> Any:
    if isinstance(tier, bool) or not isinstance(tier, int) or not 1 <= tier <= 5:
        raise InputError("risk_tier", f"risk_tier must be a whole number from 1 to 5, not {tier!r}")
    return tier


Text = Annotated[str | None, read_text()]
LongText = Annotated[str | None, read_text(limit=MAX_LONG_TEXT)]
RequiredText = Annotated[str, read_text(required=True)]
Moment = Annotated[
    dt.datetime | None,
    BeforeValidator(_read_moment),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "null"}]}),  # ISO 8601, as sent
]


class NewOrderRequest(RequestBody):
    shape = '{"photo_id": "...", "enterprise_id": "E100", "assignee": "...", "measures": "..."}'
    model_config = example(
        {
            "photo_id": "0123456789abcdef0123456789abcdef",
            "enterprise_id": "E-100",
            "assignee": "王工",
            "measures": "加装护栏 fit a guard rail",
        }
    )

    hazard: Annotated[Text, AfterValidator(_known_hazard)] = Field(
        default=None, description="the hazard to compare; default: the case's most severe"
    )
    photo_id: RequiredText = Field(description="a review case an officer confirmed or corrected")
    enterprise_id: RequiredText = Field(max_length=MAX_TEXT)
    site_id: Text = short_text("default: the case's site_id")
    district: Text = short_text()
    assignee: Text = short_text()
    measures: LongText = long_text()
    due_at: Moment = Field(
        default=None, description="ISO 8601 (UTC without an offset); default: by the hazard's severity"
    )


class NewSupervisionRequest(RequestBody):
    shape = '{"enterprise_id": "E100", "risk_tier": 4, "officer": "...", "notes": "..."}'
    model_config = example(
        {"enterprise_id": "E-DOCS-EXAMPLE", "risk_tier": 4, "notes": "一年内三次停工 three stoppages in a year"}
    )

    risk_tier: Annotated[int, BeforeValidator(_risk_tier)] = Field(
        ge=1, le=5, description="below the policy's supervision_min_tier (4) is 422"
    )
    enterprise_id: RequiredText = Field(max_length=MAX_TEXT)
    officer: Text = short_text("default: the key's holder")
    district: Text = short_text()
    notes: LongText = long_text()
    due_at: Moment = Field(default=None, description="ISO 8601; default: the policy's supervision_due")


class MoveRequest(RequestBody):
    shape = '{"action": "start", "comment": "..."}'
    model_config = example({"action": "start", "comment": "已安排 on it"})

    action: Annotated[OrderAction, BeforeValidator(_action)] = Field(
        description="enterprise keys: start and submit (supervision) only"
    )
    comment: LongText = long_text()
    outcome: LongText = long_text("what came of it (closing supervision)")


AMENDABLE = ("assignee", "officer", "district", "measures", "notes", "due_at")


def _no_removal(message: str) -> AfterValidator:
    """A field that may be changed but not removed: null (or blank) is refused with `message`."""

    def present(value: Any, info: ValidationInfo) -> Any:
        if value is None:
            raise InputError(info.field_name, message)
        return value

    return AfterValidator(present)


class AmendmentRequest(RequestBody):
    """At least one field besides `comment`; the history keeps the old and new values."""

    shape = '{"assignee": "...", "due_at": "2026-12-09T17:00:00Z", "comment": "..."}'
    model_config = ConfigDict(extra="forbid", **example({"assignee": "李工", "comment": "换人负责 new assignee"}))

    assignee: Text = short_text()
    officer: Annotated[Text, _no_removal("an order always has a responsible officer; name the new one")] = short_text(
        "cannot be removed, only replaced"
    )
    district: Text = short_text()
    measures: LongText = long_text()
    notes: LongText = long_text()
    due_at: Annotated[Moment, _no_removal("due_at cannot be removed, only moved")] = Field(
        default=None, description="ISO 8601; cannot be removed, only moved"
    )
    comment: LongText = long_text()

    @classmethod
    def refuse_unknown(cls, body: dict[str, Any]) -> None:
        unknown = sorted(set(body) - set(cls.model_fields))
        if unknown:
            raise InputError(unknown[0], f"cannot amend {unknown}; amendable: {sorted(AMENDABLE)}")

    @model_validator(mode="after")
    def _something(self) -> AmendmentRequest:
        if not self.changes:
            raise InputError("body", f"say what to amend: one of {sorted(AMENDABLE)}")
        return self

    @property
    def changes(self) -> dict[str, Any]:
        """The columns to change: the fields the body gave, its comment apart."""
        return {name: getattr(self, name) for name in AMENDABLE if name in self.model_fields_set}
