"""What a request to the claims API may say, checked before anything is written. Every problem of a
body is reported at once: InputError names the first field and lists them all under `errors`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import InputError
from serving.claims.policy import CHANNELS, TYPES, ClaimsPolicy
from serving.claims.states import ACTIONS, STATES
from serving.orders.requests import text  # one text reader: ids normalised (NFKC, no invisible or control characters)

MAX_TEXT, MAX_LONG_TEXT, MAX_COMMENT = 200, 4000, 500
MAX_WORKERS, MAX_AMOUNT = 100_000, 1e10
MAX_LIMIT = 500


@dataclass(frozen=True)
class NewClaim:
    channel: str
    enterprise_id: str
    type: str
    workers: int
    amount_cny: float | None
    description: str
    district: str | None
    claimant: str | None  # raw here; the store keeps only its pseudonym


@dataclass(frozen=True)
class CaseMove:
    action: str
    handler: str | None = None
    comment: str | None = None
    outcome: str | None = None
    recovered_cny: float | None = None
    injury_recognised: bool | None = None


@dataclass(frozen=True)
class Feedback:
    satisfied: int
    resolved: bool
    comment: str | None


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


def _object(body: Any, example: str) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise InputError("body", f"send a JSON object such as {example}")
    return body


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


NEW_CLAIM_FIELDS = ("channel", "enterprise_id", "type", "workers", "amount_cny", "description", "district", "claimant")


def parse_new_claim(body: Any) -> NewClaim:
    body = _object(
        body,
        '{"channel": "hotline_12351", "enterprise_id": "E100", "type": "wage_arrears", "workers": 1, '
        '"amount_cny": 8000, "description": "..."}',
    )
    problems = Problems()
    for unknown in sorted(set(body) - set(NEW_CLAIM_FIELDS)):
        problems.add(unknown, f"unknown field; a claim has {list(NEW_CLAIM_FIELDS)}")
    values = {
        "channel": problems.check("channel", lambda: choice(body, "channel", CHANNELS)),
        "enterprise_id": problems.check("enterprise_id", lambda: text(body, "enterprise_id", required=True)),
        "type": problems.check("type", lambda: choice(body, "type", TYPES)),
        "workers": problems.check("workers", lambda: whole(body, "workers", low=1, high=MAX_WORKERS, default=1)),
        "amount_cny": problems.check("amount_cny", lambda: amount(body, "amount_cny")),
        "description": problems.check(
            "description", lambda: text(body, "description", required=True, limit=MAX_LONG_TEXT)
        ),
        "district": problems.check("district", lambda: text(body, "district")),
        "claimant": problems.check("claimant", lambda: text(body, "claimant")),
    }
    problems.raise_any()
    return NewClaim(**values)


def parse_case_move(body: Any, policy: ClaimsPolicy) -> CaseMove:
    body = _object(body, '{"action": "dispatch", "handler": "labour_inspection", "comment": "..."}')
    problems = Problems()
    action = problems.check("action", lambda: choice(body, "action", tuple(ACTIONS)))
    handler = problems.check(
        "handler", lambda: choice(body, "handler", tuple(policy.handlers), required=action == "dispatch")
    )
    outcome = problems.check(
        "outcome", lambda: choice(body, "outcome", tuple(policy.outcomes), required=action == "close")
    )
    move = CaseMove(
        action=action,
        handler=handler,
        comment=problems.check("comment", lambda: text(body, "comment", limit=MAX_LONG_TEXT)),
        outcome=outcome,
        recovered_cny=problems.check("recovered_cny", lambda: amount(body, "recovered_cny")),
        injury_recognised=problems.check("injury_recognised", lambda: flag(body, "injury_recognised")),
    )
    if action != "dispatch" and body.get("handler") is not None:
        problems.add("handler", "a handler is named only when dispatching")
    if action != "close" and any(
        body.get(name) is not None for name in ("outcome", "recovered_cny", "injury_recognised")
    ):
        problems.add("outcome", "an outcome is given only when closing")
    problems.raise_any()
    return move


def parse_feedback(body: Any) -> Feedback:
    body = _object(body, '{"satisfied": 5, "resolved": true, "comment": "..."}')
    problems = Problems()
    for unknown in sorted(set(body) - {"satisfied", "resolved", "comment"}):
        problems.add(unknown, "unknown field; feedback has satisfied, resolved and comment")
    values = {
        "satisfied": problems.check("satisfied", lambda: whole(body, "satisfied", low=1, high=5)),
        "resolved": problems.check("resolved", lambda: flag(body, "resolved", required=True)),
        "comment": problems.check("comment", lambda: text(body, "comment", limit=MAX_COMMENT)),
    }
    problems.raise_any()
    return Feedback(**values)


def parse_split(body: Any) -> list[str]:
    body = _object(body, '{"claim_ids": ["...", "..."]}')
    ids = body.get("claim_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids):
        raise InputError("claim_ids", "claim_ids must be a non-empty list of claim ids")
    if len(ids) > 10_000:
        raise InputError("claim_ids", "at most 10000 claims move at once")
    return sorted(set(ids))


def parse_merge(body: Any) -> str:
    body = _object(body, '{"into": "<case id>"}')
    return text(body, "into", required=True, limit=64)


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
