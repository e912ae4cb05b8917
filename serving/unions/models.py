"""The answers of /v1/enterprises (kept scores), /v1/unions and /v1/review-meeting, as documented
models (the service's API document shows them; unknown extra fields pass through), and the request
bodies of these routes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ModelWrapValidatorHandler, model_validator

from runtime.errors import InputError
from serving.api.bodies import RequestBody
from serving.unions.rows import MAX_ID, RowErrors, UnionRow, check_union


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ModelVersion(Open):
    name: str
    version: str


class KeptScore(Open):
    tier: int
    model_tier: int
    probabilities: dict[str, float]
    reasons: list[str]
    rules_fired: list[str]
    model: ModelVersion
    source: str
    profile_fingerprint: str
    scored_at: str | None


class UnionRef(Open):
    union_id: str
    name: str
    grade: int | None
    layer: str | None


class AssignedOfficer(Open):
    key_id: str
    holder: str
    assigned_at: str | None


class EnterpriseBody(Open):
    enterprise_id: str
    latest: KeptScore
    previous_tier: int | None
    high_since: str | None
    score_count: int
    history: list[KeptScore]
    unions: list[UnionRef]
    officers: list[AssignedOfficer] | None = None


class AssignedEnterprise(Open):
    enterprise_id: str
    assigned_at: str | None
    tier: int | None
    previous_tier: int | None
    scored_at: str | None
    high_since: str | None
    changed: str
    open_orders: int
    overdue_orders: int


class AssignedBody(Open):
    officer: str
    enterprises: list[AssignedEnterprise]


class AssignmentBody(Open):
    enterprise_id: str
    key_id: str
    assigned: bool


class UnionBody(Open):
    union_id: str
    name: str
    union_type: str
    district: str
    parent_id: str | None
    members: int
    industrial_members: int
    new_employment_members: int
    migrant_members: int
    grade: int | None
    layer: str | None
    points: float | None
    graded_at: str | None
    updated_at: str | None


class UnionListBody(Open):
    total: int
    unions: list[UnionBody]
    distribution: dict[str, dict[str, dict[str, int]]]


class Factor(Open):
    factor: str
    value: Any
    points: float


class GradeChange(Open):
    run_id: str
    grade: int
    previous_grade: int | None
    layer: str
    points: float
    graded_at: str | None


class CoveredEnterprise(Open):
    enterprise_id: str
    tier: int | None
    previous_tier: int | None
    scored_at: str | None
    high_since: str | None


class OpenOrder(Open):
    id: str
    kind: str
    enterprise_id: str
    state: str
    due_at: str | None


class UnionDetailBody(UnionBody):
    factors: list[Factor]
    history: list[GradeChange]
    enterprise_count: int
    enterprises: list[CoveredEnterprise]
    open_orders: list[OpenOrder]


class GradeRunBody(Open):
    run_id: str
    source: str
    actor: str
    grading_sha256: str
    started_at: str | None
    finished_at: str | None
    unions_graded: int
    grades_changed: int
    grades: dict[str, int]


class OverdueLists(Open):
    supervision: list[dict[str, Any]]
    rectification: list[dict[str, Any]]


class ReviewMeetingBody(Open):
    week: str
    starts_at: str | None
    ends_at: str | None
    as_of: str | None
    newly_high: list[dict[str, Any]]
    unions_rose: list[dict[str, Any]]
    overdue: OverdueLists
    closed: list[dict[str, Any]]
    by_district: list[dict[str, Any]]
    by_union_type: list[dict[str, Any]]
    trend: list[dict[str, Any]]


# --- request bodies: checked by the union import's own row checker (serving/unions/rows.py) -------


def _key_id(key_id: Any) -> Any:
    if not isinstance(key_id, str) or not key_id.strip():
        raise InputError("key_id", 'give the officer\'s key id, or "me"')
    return key_id


class ObjectBody(RequestBody):
    @classmethod
    def not_an_object(cls) -> InputError:
        return InputError("body", "must be a JSON object with the union's fields")


class OfficerAssignment(ObjectBody):
    key_id: Annotated[str, BeforeValidator(_key_id)] = Field(
        description='"me" (a reviewer assigns themself) or another officer\'s key id (admin)'
    )


class UnionFields(ObjectBody):
    """A union's fields as a request gives them; every problem at once, as the import reports them."""

    model_config = ConfigDict(extra="forbid")
    partial: ClassVar[bool] = False
    what: ClassVar[str] = "the union"

    union_id: str | None = Field(default=None, max_length=MAX_ID)
    name: str | None = Field(default=None, max_length=200)
    union_type: str | None = Field(default=None, description="a union_type category of the risk schema")
    district: str | None = Field(default=None, max_length=100)
    parent_id: str | None = Field(default=None, max_length=MAX_ID)
    members: int | None = Field(default=None, ge=0)
    industrial_members: int | None = Field(default=None, ge=0, description="at most members")
    new_employment_members: int | None = Field(default=None, ge=0, description="at most members")
    migrant_members: int | None = Field(default=None, ge=0, description="at most members")
    enterprise_ids: list[str] | None = Field(default=None, description="the enterprises the union covers")

    @model_validator(mode="wrap")
    @classmethod
    def _checked(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        problems = RowErrors()
        found = check_union(cls.json_object(data), problems, row=None, partial=cls.partial)
        problems.raise_if_any(cls.what)
        return handler(found if cls.partial else asdict(found))


class NewUnionRequest(UnionFields):
    """union_id, name, union_type, district and members are required."""

    union_id: str = Field(max_length=MAX_ID)
    name: str = Field(max_length=200)
    union_type: str = Field(description="a union_type category of the risk schema")
    district: str = Field(max_length=100)
    members: int = Field(ge=0)

    def row(self) -> UnionRow:
        return UnionRow(**self.model_dump())


class UnionChangeRequest(UnionFields):
    """The fields to change (union_id is the path's)."""

    partial = True
    what = "the change"

    def changes(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set)
