"""What a request to the claims API may say, checked before anything is written. Every problem of a
body is reported at once: InputError names the first field and lists them all under `errors`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, ModelWrapValidatorHandler, ValidationError, ValidationInfo, model_validator

from runtime.errors import InputError
from serving.api.bodies import RequestBody
from serving.api_models import example
from serving.claims.policy import CHANNELS, TYPES, ClaimsPolicy, load_policy
from serving.claims.states import ACTIONS, STATES
from serving.orders.requests import text  # one text reader: ids normalised (NFKC, no invisible or control characters)

MAX_TEXT, MAX_LONG_TEXT, MAX_COMMENT = 200, 4000, 500
MAX_WORKERS, MAX_AMOUNT = 100_000, 1e10
MAX_LIMIT = 500


@dataclass(frozen=True)
class CaseFilter:
    state: str = "open"  # open: anything not closed
    enterprise_id: str | None = None
    type: str | None = None
    channel: str | None = None
    district: str | None = None
    limit: int = 50
    offset: int = 0

    @property
    def states(self) -> tuple[str, ...] | None:
        if self.state == "all":
            return None
        return tuple(s for s in STATES if s != "closed") if self.state == "open" else (self.state,)


class Problems:
    """Collects every problem of one body; `raise_any` raises them as one InputError."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append({"field": field, "message": message})

    def check(self, field: str, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except InputError as error:
            self.add(error.field, error.message)
            return None

    def raise_any(self, status_code: int = 422) -> None:
        if self.errors:
            first = self.errors[0]
            raise InputError(
                first["field"],
                first["message"],
                status_code=status_code,
                error_count=len(self.errors),
                errors=self.errors,
            )


def choice(
    body: Mapping[str, Any], field: str, choices: tuple[str, ...] | list[str], *, required: bool = True
) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if value not in choices:
        raise InputError(field, f"unknown {field} {value!r}; use one of {list(choices)}")
    return value


def whole(body: Mapping[str, Any], field: str, *, low: int, high: int, default: int | None = None) -> int:
    value = body.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(field, f"{field} must be a whole number from {low} to {high}, not {value!r}")
    return value


def amount(body: Mapping[str, Any], field: str) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(field, f"{field} must be a number of yuan (CNY), not {value!r}")
    if not 0 <= value <= MAX_AMOUNT:
        raise InputError(field, f"{field} must be from 0 to {MAX_AMOUNT:.0f} yuan, not {value!r}")
    return round(float(value), 2)


def flag(body: Mapping[str, Any], field: str, *, required: bool = False) -> bool | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, bool):
        raise InputError(field, f"{field} must be true or false, not {value!r}")
    return value


def parse_filter(params: Mapping[str, str]) -> CaseFilter:
    problems = Problems()
    state = params.get("state") or "open"
    if state not in (*STATES, "open", "all"):
        problems.add("state", f"unknown state {state!r}; use one of {[*STATES, 'open', 'all']}")
    for field, choices in (("type", TYPES), ("channel", CHANNELS)):
        if params.get(field) and params[field] not in choices:
            problems.add(field, f"unknown {field} {params[field]!r}; use one of {list(choices)}")
    limit = problems.check("limit", lambda: _int_param(params, "limit", 50, 1, MAX_LIMIT))
    offset = problems.check("offset", lambda: _int_param(params, "offset", 0, 0, 10_000_000))
    problems.raise_any()
    return CaseFilter(
        state=state,
        enterprise_id=params.get("enterprise_id") or None,
        type=params.get("type") or None,
        channel=params.get("channel") or None,
        district=params.get("district") or None,
        limit=limit,
        offset=offset,
    )


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(name, f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise InputError(name, f"{name} must be from {low} to {high}, not {value}")
    return value


# --- the JSON bodies: each field read by one of the readers above, every problem reported at once ---


def reads(reader: Callable[..., Any], **options: Any) -> BeforeValidator:
    """A field read by `reader(body, field, **options)` (`choice`, `whole`, `amount`, `flag`, `text`)."""

    def read(value: Any, info: ValidationInfo) -> Any:
        return reader({info.field_name: value}, info.field_name, **options)

    return BeforeValidator(read)


def _policy_choice(choices: Callable[[ClaimsPolicy], Any], needed_by: str) -> BeforeValidator:
    """A choice among the policy's names (handlers, outcomes), required by one action only."""

    def read(value: Any, info: ValidationInfo) -> Any:
        required = info.data.get("action") == needed_by  # absent when the action itself was refused
        return choice({info.field_name: value}, info.field_name, tuple(choices(load_policy())), required=required)

    return BeforeValidator(read)


class AllProblems(RequestBody):
    """A body whose problems are reported at once: the first names the field, `errors` lists them all
    (`error_count` of them); unknown fields are problems too where `unknown_field` says so."""

    unknown_field: ClassVar[str | None] = None

    @classmethod
    def more_problems(cls, body: dict[str, Any], problems: Problems) -> None:
        """Problems between fields, after each field's own."""

    @model_validator(mode="wrap")
    @classmethod
    def _all_problems(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        body = cls.json_object(data)
        problems = Problems()
        if cls.unknown_field is not None:
            for unknown in sorted(set(body) - set(cls.model_fields)):
                problems.add(unknown, cls.unknown_field)
        try:
            checked = handler(body)
        except ValidationError as error:
            checked = None
            for found in error.errors():
                cause = found.get("ctx", {}).get("error")
                if isinstance(cause, InputError):
                    problems.add(cause.field, cause.message)
                else:
                    problems.add(str(found["loc"][-1]) if found["loc"] else "body", found["msg"])
        cls.more_problems(body, problems)
        problems.raise_any()
        return checked


class NewClaimRequest(AllProblems):
    shape = (
        '{"channel": "hotline_12351", "enterprise_id": "E100", "type": "wage_arrears", "workers": 1, '
        '"amount_cny": 8000, "description": "..."}'
    )
    unknown_field = (
        "unknown field; a claim has "
        "['channel', 'enterprise_id', 'type', 'workers', 'amount_cny', 'description', 'district', 'claimant']"
    )
    model_config = example(
        {
            "channel": "hotline_12351",
            "enterprise_id": "EXAMPLE-0001",
            "type": "wage_arrears",
            "workers": 1,
            "amount_cny": 9000,
            "description": "拖欠两个月工资",
            "district": "南山区",
        }
    )

    channel: Annotated[Literal[CHANNELS], reads(choice, choices=CHANNELS)]
    enterprise_id: Annotated[str, reads(text, required=True)] = Field(max_length=MAX_TEXT)
    type: Annotated[Literal[TYPES], reads(choice, choices=TYPES)]
    workers: Annotated[int, reads(whole, low=1, high=MAX_WORKERS)] = Field(
        default=1, ge=1, le=MAX_WORKERS, description="workers affected"
    )
    amount_cny: Annotated[float | None, reads(amount)] = Field(default=None, ge=0, description="amount claimed (CNY)")
    description: Annotated[str, reads(text, required=True, limit=MAX_LONG_TEXT)] = Field(max_length=MAX_LONG_TEXT)
    district: Annotated[str | None, reads(text)] = Field(default=None, max_length=MAX_TEXT)
    claimant: Annotated[str | None, reads(text)] = Field(
        default=None, max_length=MAX_TEXT, description="kept only as a keyed pseudonym"
    )


class CaseMoveRequest(AllProblems):
    shape = '{"action": "dispatch", "handler": "labour_inspection", "comment": "..."}'
    model_config = example({"action": "dispatch", "handler": "labour_inspection", "comment": "转人社监察"})

    action: Annotated[Literal[tuple(ACTIONS)], reads(choice, choices=tuple(ACTIONS))]
    handler: Annotated[str | None, _policy_choice(lambda policy: policy.handlers, "dispatch")] = Field(
        default=None, validate_default=True
    )
    outcome: Annotated[str | None, _policy_choice(lambda policy: policy.outcomes, "close")] = Field(
        default=None, validate_default=True
    )
    comment: Annotated[str | None, reads(text, limit=MAX_LONG_TEXT)] = Field(default=None, max_length=MAX_LONG_TEXT)
    recovered_cny: Annotated[float | None, reads(amount)] = Field(default=None, ge=0)
    injury_recognised: Annotated[bool | None, reads(flag)] = None

    @classmethod
    def more_problems(cls, body: dict[str, Any], problems: Problems) -> None:
        action = body.get("action") if body.get("action") in tuple(ACTIONS) else None  # a list is no dict key
        if action != "dispatch" and body.get("handler") is not None:
            problems.add("handler", "a handler is named only when dispatching")
        if action != "close" and any(
            body.get(name) is not None for name in ("outcome", "recovered_cny", "injury_recognised")
        ):
            problems.add("outcome", "an outcome is given only when closing")


class FeedbackRequest(AllProblems):
    shape = '{"satisfied": 5, "resolved": true, "comment": "..."}'
    unknown_field = "unknown field; feedback has satisfied, resolved and comment"
    model_config = example({"satisfied": 5, "resolved": True, "comment": "工资已补发"})

    satisfied: Annotated[int, reads(whole, low=1, high=5)] = Field(ge=1, le=5)
    resolved: Annotated[bool, reads(flag, required=True)]
    comment: Annotated[str | None, reads(text, limit=MAX_COMMENT)] = Field(
        default=None, max_length=MAX_COMMENT, description="shown to officers only"
    )


def _claim_ids(ids: Any) -> list[str]:
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids):
        raise InputError("claim_ids", "claim_ids must be a non-empty list of claim ids")
    if len(ids) > 10_000:
        raise InputError("claim_ids", "at most 10000 claims move at once")
    return sorted(set(ids))


class SplitRequest(RequestBody):
    shape = '{"claim_ids": ["...", "..."]}'
    model_config = example({"claim_ids": ["0123456789abcdef0123456789abcdef"]})

    claim_ids: Annotated[list[str], BeforeValidator(_claim_ids)]


class MergeRequest(RequestBody):
    shape = '{"into": "<case id>"}'
    model_config = example({"into": "0123456789abcdef0123456789abcdef"})

    into: Annotated[str, reads(text, required=True, limit=64)]
