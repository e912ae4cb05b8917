"""Reviewers' decisions: what a request may say, checked before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, WithJsonSchema

from runtime.errors import InputError
from runtime.taxonomy import load_taxonomy
from serving.api.bodies import RequestBody
from serving.api_models import example

DECISIONS = ("confirm", "correct", "dismiss", "rectified")
STATUS_AFTER = {"confirm": "confirmed", "correct": "corrected", "dismiss": "dismissed", "rectified": "rectified"}
OPEN_STATUSES = ("open", "clear")  # not decided yet: flagged by the model, or not flagged
STATUSES = OPEN_STATUSES + tuple(STATUS_AFTER.values())
MAX_COMMENT = 2000


def _decision(decision: Any) -> Any:
    if decision not in DECISIONS:
        raise InputError("decision", f"unknown decision {decision!r}; use one of {list(DECISIONS)}")
    return decision


def _comment(comment: Any) -> str | None:
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise InputError("comment", f"comment must be text of at most {MAX_COMMENT} characters")
    return comment or None


def _apply_to_group(apply_to_group: Any) -> Any:
    if not isinstance(apply_to_group, bool):
        raise InputError("apply_to_group", "apply_to_group must be true or false")
    return apply_to_group


def _hazards(hazards: Any, info: ValidationInfo) -> tuple[str, ...]:
    decision = info.data.get("decision")
    if decision != "correct":
        if hazards not in (None, [], ()):
            raise InputError("hazards", f"hazards are only given with `correct`, not with `{decision}`")
        return ()
    if not isinstance(hazards, list) or not hazards:
        raise InputError(
            "hazards",
            '`correct` needs the hazard types actually present, e.g. ["wet_floor"]; '
            "if there is no hazard, use `dismiss`",
        )
    taxonomy = load_taxonomy()
    unknown = [h for h in hazards if not isinstance(h, str) or h not in taxonomy]
    if unknown:
        raise InputError("hazards", f"unknown hazard type(s) {unknown}; known types: {sorted(taxonomy)}")
    return tuple(dict.fromkeys(hazards))


class DecisionRequest(RequestBody):
    """A reviewer's decision on a case (checked before anything is written; InputError names the field)."""

    shape = '{"decision": "confirm"}'
    model_config = example({"decision": "confirm", "comment": "现场核实 seen on site"})

    decision: Annotated[Literal["confirm", "correct", "dismiss", "rectified"], BeforeValidator(_decision)]
    comment: Annotated[str | None, BeforeValidator(_comment)] = Field(default=None, max_length=MAX_COMMENT)
    apply_to_group: Annotated[bool, BeforeValidator(_apply_to_group)] = False
    hazards: Annotated[
        tuple[str, ...],
        BeforeValidator(_hazards),
        WithJsonSchema({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}),
    ] = Field(default=(), validate_default=True, description="for `correct`: the hazard types actually present")

    @classmethod
    def refuse_unknown(cls, body: dict[str, Any]) -> None:
        if "reviewer" in body:
            raise InputError(
                "reviewer",
                "do not send a reviewer: decisions are recorded as the signed-in key and the person holding it",
            )


@dataclass(frozen=True)
class Reviewer:
    """Who decides: the credential that signed the request in and the person it belongs to."""

    key_id: str
    holder: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "holder": self.holder}


def reviewer_of(principal: Any) -> Reviewer:
    """The reviewer behind a request, from the principal `serving.auth.ApiKeyAuth` put in its scope.

    Never from the request body or a header: identities come from credentials, not declarations.
    """
    if principal is None:
        raise InputError("authorization", "sign in at /sign-in or send a reviewer API key", status_code=401)
    return Reviewer(principal.key_id, principal.holder or None)


def resolved_hazards(decision: DecisionRequest, flagged: list[str]) -> tuple[str, ...]:
    """The hazard types the decision says are present: the model's flags when confirmed or rectified."""
    if decision.decision in ("confirm", "rectified"):
        return tuple(flagged)
    return decision.hazards
