"""The answers of /v1/enterprises (kept scores), /v1/unions and /v1/review-meeting, as documented
models (the service's API document shows them; unknown extra fields pass through)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


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
