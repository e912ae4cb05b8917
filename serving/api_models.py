"""The API's typed bodies (pydantic): what each route answers, its errors included, for the
responses and for the OpenAPI document at /docs.json (serving/openapi.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Triage = Literal["clear", "review", "urgent"]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # some errors add context: row, enterprise_id, errors...

    field: str = Field(description="the request part at fault (a form field, 'body', 'authorization', ...)")
    message: str = Field(description="what is wrong and what to do")


class ErrorBody(BaseModel):
    """Every 4xx/5xx Ankang answers itself: which field, and what is wrong."""

    error: ErrorDetail


class ValidationIssue(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    loc: list[str | int] = Field(description="where: the field name first")
    msg: str


class RequestValidationBody(BaseModel):
    """400 when the form does not match the route's fields (missing, too long, not an upload, ...)."""

    error: str
    detail: list[ValidationIssue]


class ModelRef(BaseModel):
    name: str
    version: str


class HazardTypeBody(BaseModel):
    """A hazard type as the taxonomy (datasets/hazard_types.yaml) describes it."""

    type: str = Field(description="hazard type id")
    name_zh: str
    name_en: str
    gb6441: str = Field(description="GB 6441 accident category")
    osha_focus_four: str | None
    severity: str = Field(description="疑似重大 (suspected major) or 一般 (ordinary)")


class FlaggedHazardBody(HazardTypeBody):
    probability: float
    threshold: float


class DetectionBody(BaseModel):
    type: str = Field(description="person-level hazard type, e.g. missing_helmet")
    score: float
    box: list[float] = Field(
        min_length=4, max_length=4, description="x0, y0, x1, y1 in the uploaded photo's pixels after EXIF orientation"
    )


class PhotoMetadata(BaseModel):
    site_id: str | None = None
    sector: str | None = None
    channel: str | None = None
    note: str | None = None
    reporter: str | None = Field(default=None, description="a keyed pseudonym of the reporter, never the name")


class PhotoAssessmentBody(BaseModel):
    """One photo's assessment; the photo and this assessment are stored as a review case."""

    photo_id: str = Field(description="the review case's id (32 hex digits)")
    model: ModelRef
    hazards: dict[str, float] = Field(description="probability per hazard type the model scores")
    flagged: list[FlaggedHazardBody] = Field(description="types at or above their threshold, suspected-major first")
    triage: Triage
    detections: list[DetectionBody] = Field(description="boxes of person-level hazards; [] for a model without boxes")
    metadata: PhotoMetadata
    receipt: str = Field(description="the reporter's receipt: GET /v1/reports/{receipt} follows the report's outcome")


class ReloadedModel(BaseModel):
    reloaded: bool
    version: str


class ReloadBody(BaseModel):
    hazard_photo: ReloadedModel
    labor_risk: ReloadedModel


class RuleFired(BaseModel):
    id: str
    description: str
    min_tier: int


class Reason(BaseModel):
    field: str
    value: Any = Field(description="the enterprise's value of the field")
    contribution: float


class EnterpriseResult(BaseModel):
    enterprise_id: str | int
    tier: int = Field(description="final tier (1 lowest .. 5 highest), after policy floors")
    model_tier: int = Field(description="the model's own tier")
    probabilities: dict[str, float] = Field(description="probability per tier ('1'..'5')")
    rules_fired: list[RuleFired]
    reasons: list[Reason] = Field(description="fields that raised the risk most")
    imputed: list[str] = Field(description="fields missing from the profile, imputed")


class EnterpriseScoresBody(BaseModel):
    model: ModelRef
    results: list[EnterpriseResult]


class EnterprisesRequest(BaseModel):
    enterprises: list[dict[str, Any]] = Field(
        description="up to 10,000 profiles; each needs enterprise_id, other fields (datasets/labor_risk/schema.yaml) "
        "are optional",
        examples=[[{"enterprise_id": "E-1", "employees": 120}]],
    )


# --- the review routes (serving/review/app.py), described here so the document covers them ---

ReviewStatus = Literal["open", "clear", "confirmed", "corrected", "dismissed", "rectified"]


class ReviewerBody(BaseModel):
    """Who decided: the key that signed the request in, and the person it belongs to."""

    key_id: str
    holder: str | None


class SignedInBody(ReviewerBody):
    role: str
    via: str = Field(description="how the request authenticated: key or session")


class ReviewCase(BaseModel):
    photo_id: str
    status: ReviewStatus
    triage: Triage
    created_at: str = Field(description="UTC, ISO 8601")
    decided_at: str | None
    model: ModelRef
    hazards: dict[str, float]
    flagged: list[FlaggedHazardBody]
    top_probability: float
    metadata: PhotoMetadata
    width: int
    height: int
    group_id: str = Field(description="cases showing the same scene within 30 days share a group")
    decision_count: int
    has_cam: bool
    detections: list[DetectionBody]


class QueueItem(ReviewCase):
    group_size: int


class ReviewQueueBody(BaseModel):
    items: list[QueueItem] = Field(description="most urgent first (decided statuses: latest decision first)")
    total: int
    limit: int
    offset: int
    counts: dict[str, int] = Field(description="cases per status under the same filters")


class GroupMember(BaseModel):
    photo_id: str
    status: ReviewStatus


class DecisionEntry(BaseModel):
    id: int
    decision: Literal["confirm", "correct", "dismiss", "rectified"]
    hazards: list[str]
    comment: str | None
    reviewer: ReviewerBody
    legacy_reviewer: str | None = Field(default=None, description="the free-text name recorded before keys had holders")
    created_at: str
    via_photo_id: str | None


class ReviewCaseDetail(ReviewCase):
    group: list[GroupMember]
    history: list[DecisionEntry] = Field(description="every decision on the case, oldest first")


class DecisionRequest(BaseModel):
    decision: Literal["confirm", "correct", "dismiss", "rectified"]
    hazards: list[str] | None = Field(default=None, description="for `correct`: the hazard types actually present")
    comment: str | None = Field(default=None, max_length=2000)
    apply_to_group: bool = False


class DecisionResult(BaseModel):
    photo_id: str
    decision: str
    hazards: list[str]
    status: ReviewStatus
    applied_to: list[str]
    reviewer: ReviewerBody
    decided_at: str


class TaxonomyBody(BaseModel):
    types: list[HazardTypeBody]
