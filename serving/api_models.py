"""The API's typed bodies (pydantic): what each route answers, its errors included, for the
responses and for the OpenAPI document at /docs.json (serving/openapi_document.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Triage = Literal["clear", "review", "urgent"]


def example(body: dict[str, Any]) -> ConfigDict:
    """A request model's example: what /docs "Try it out" sends (tests/serving/test_openapi.py posts each)."""
    return ConfigDict(json_schema_extra={"example": body})


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
    boxes: int = Field(
        0,
        description="boxes of this type drawn on the photo (`detections`); a type with a box is flagged even "
        "when its probability is under its threshold",
    )


class DetectionBody(BaseModel):
    type: str = Field(
        description="the hazard type the box shows: missing_helmet (a bare head), missing_hi_vis (a person "
        "without hi-vis) or heavy_machinery (a machine), as the model card's detection.classes list them"
    )
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
    detections: list[DetectionBody] = Field(
        description="boxes of people without a helmet or hi-vis and of heavy machinery, best first; "
        "[] for a model without boxes"
    )
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
    decided_hazards: list[str] | None = Field(
        default=None, description="a corrected case: the hazards the officer corrected it to (else null)"
    )


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
    due_hours_by_severity: dict[str, float] = Field(
        default_factory=dict, description="hours a rectification order of each severity gets (datasets/rectification)"
    )


# --- the order routes (serving/orders/app.py): rectification orders, supervision cases, receipts ---

OrderState = Literal["open", "in_progress", "submitted", "verified", "closed"]
OrderAction = Literal["start", "submit", "verify", "reject", "close"]
OrderKind = Literal["rectification", "supervision"]


def short_text(description: str | None = None) -> Any:
    return Field(default=None, max_length=200, description=description)


def long_text(description: str | None = None) -> Any:
    return Field(default=None, max_length=4000, description=description)


class OrderHazard(BaseModel):
    """A hazard type of the order; a type the taxonomy no longer names has only `type`."""

    type: str
    name_zh: str | None = None
    name_en: str | None = None
    gb6441: str | None = None
    osha_focus_four: str | None = None
    severity: str | None = None


class SceneSimilarity(BaseModel):
    dhash_distance: int = Field(description="bits in which the 64-bit dHashes of the original and the proof differ")
    similarity: float = Field(description="1 - dhash_distance / 64; unrelated photos are about 0.5")
    near_duplicate: bool = Field(description="within the review store's near-duplicate distance: nearly the original")
    differs: bool = Field(description="similarity below 0.7: probably not the same scene")


class ComparedPhoto(BaseModel):
    probability: float | None = Field(description="the model's probability of the compared hazard in this photo")
    photo: str = Field(description="where the photo is: /v1/orders/{id}/photos/original or .../proof")
    scene: SceneSimilarity | None = Field(
        default=None, description="proof only: how alike the original's scene it is (null for older proofs)"
    )


class Comparison(BaseModel):
    hazard: str | None = Field(description="the hazard compared before and after")
    before: ComparedPhoto = Field(description="the reported photo (the review case's)")
    after: ComparedPhoto | None = Field(description="the latest proof photo; null until one is submitted")


class Order(BaseModel):
    """A rectification order (整改单) or supervision case (督办)."""

    id: str
    kind: OrderKind
    state: OrderState
    enterprise_id: str
    site_id: str | None
    district: str | None
    assignee: str | None
    officer: str = Field(description="the responsible officer")
    measures: str | None
    notes: str | None
    outcome: str | None
    severity: str = Field(description="疑似重大 or 一般 (the compared hazard's), 督办 for supervision")
    hazards: list[OrderHazard] = Field(description="the case's confirmed hazard types; [] for supervision")
    risk_tier: int | None = Field(description="supervision: the risk tier that opened it")
    created_at: str = Field(description="UTC, ISO 8601")
    due_at: str
    updated_at: str
    rectified_at: str | None = Field(description="when verified")
    closed_at: str | None
    overdue: bool = Field(description="not yet verified and past due_at")
    escalation_level: int = Field(description="0 until overdue, then the level reached (datasets/rectification)")
    transition_count: int
    rectified: bool = Field(description="verified or closed")
    comparison: Comparison | None = Field(default=None, description="rectification orders only (absent otherwise)")
    photo_id: str | None = Field(
        default=None, description="the review case (null for supervision); absent for enterprise keys"
    )


class OrderTransition(BaseModel):
    id: int
    action: Literal["create", "start", "submit", "verify", "reject", "close", "amend", "escalate", "reopen"]
    from_state: str | None = Field(alias="from", description="null for create")
    to: str
    actor: str = Field(description="the key (and its holder) or system:... that acted")
    comment: str | None
    details: dict[str, Any] | None = Field(description="proof photo and its assessment, amendment, escalation level")
    created_at: str


class ReporterRating(BaseModel):
    round: int = Field(description="which closing it answers: 0, then one more after each reopening")
    satisfied: int = Field(description="1-5")
    resolved: bool
    comment: str | None
    created_at: str


class OrderDetail(Order):
    history: list[OrderTransition] = Field(description="every transition, oldest first")
    feedback: list[ReporterRating] | None = Field(
        default=None, description="officers only: the reporter's ratings through the receipt (docs/claims.md)"
    )


class OrderList(BaseModel):
    items: list[Order] = Field(description="soonest due first")
    total: int
    limit: int
    offset: int
    counts: dict[str, int] = Field(description="orders per state under the same filters")


class ProofForm(BaseModel):
    photo: bytes = Field(description="the proof photo (JPEG, PNG or WebP, at most 16 MiB)")
    comment: str | None = long_text()


class EscalationLevel(BaseModel):
    level: int
    id: str
    name_zh: str
    name_en: str


class Escalation(BaseModel):
    order_id: str
    level: EscalationLevel


class EscalatedBody(BaseModel):
    escalated: list[Escalation] = Field(description="the orders raised a level by this run")


class DashboardEntry(BaseModel):
    key: str = Field(description="the site, enterprise, district or hazard ('(none)' when not set)")
    orders: int
    unrectified: int
    overdue: int
    rectified: int
    median_days_to_rectify: float | None


class DashboardBreakdown(BaseModel):
    site: list[DashboardEntry]
    enterprise: list[DashboardEntry]
    district: list[DashboardEntry]
    hazard: list[DashboardEntry]


class DashboardWeek(BaseModel):
    week: str = Field(description="ISO week, e.g. 2026-W49")
    starts: str = Field(description="its Monday, YYYY-MM-DD")
    opened: int
    rectified: int


class SupervisionFigures(BaseModel):
    by_state: dict[str, int]
    overdue: int


class DashboardBody(BaseModel):
    """Figures over rectification orders (supervision cases apart); each breakdown its top 20 keys."""

    generated_at: str
    orders: int
    by_state: dict[str, int]
    unrectified: int
    overdue: int
    escalated: dict[str, int] = Field(description="unrectified orders per escalation level reached ('1'..)")
    median_days_to_rectify: float | None
    by: DashboardBreakdown = Field(description="most unrectified first")
    weekly: list[DashboardWeek] = Field(description="the last 12 weeks, oldest first")
    supervision: SupervisionFigures


class ReportHazard(BaseModel):
    type: str
    name_zh: str
    name_en: str


class NamedItem(BaseModel):
    id: str
    name_zh: str
    name_en: str


class ReportEvent(BaseModel):
    event: str = Field(
        description="photos: received, reviewed, create, start, submit, verify, reject, close, reopen; "
        "claims: accept, dispatch, handle, close, reopen, escalate, supervise"
    )
    on: str | None = Field(description="YYYY-MM-DD")
    message_zh: str
    message_en: str
    handler: NamedItem | None = Field(default=None, description="dispatch: who handles the claim")
    outcome: NamedItem | None = Field(default=None, description="a claim's close: how it closed")
    recovered_cny: float | None = Field(default=None, description="a claim's close: the amount recovered")


class ReportFeedbackState(BaseModel):
    open: bool = Field(description="true: POST /v1/reports/{receipt}/feedback rates the closed stage now")
    given: int = Field(description="ratings given through this receipt so far")


class ReportStatus(BaseModel):
    """What a reporter learns from a receipt: stage, outcome and days; never who, where or which enterprise."""

    stage: Literal["received", "no_hazard_flagged", "no_hazard_found", "confirmed", "rectifying", "rectified", "closed"]
    message_zh: str
    message_en: str
    reported_on: str = Field(description="YYYY-MM-DD")
    rectification_due_on: str | None
    rectified_on: str | None
    closed_on: str | None
    hazards: list[ReportHazard] = Field(description="the confirmed hazard types; [] until reviewed")
    kind: Literal["photo_report"] = Field(description="a claim's receipt answers kind `claim` (docs/claims.md)")
    timeline: list[ReportEvent] = Field(description="what happened, oldest first, days only; never who")
    feedback: ReportFeedbackState


class ClaimReportStatus(BaseModel):
    """What a worker learns from a claim's receipt: stage, timeline and days; never who or which enterprise."""

    kind: Literal["claim"]
    stage: Literal["accepted", "dispatched", "handled", "closed"]
    message_zh: str
    message_en: str
    type: str = Field(description="the claim's type, e.g. wage_arrears")
    reported_on: str = Field(description="YYYY-MM-DD")
    due_on: str | None
    closed_on: str | None
    timeline: list[ReportEvent]
    feedback: ReportFeedbackState


# --- workers' claims (serving/claims/app.py, docs/claims.md) ---


class ClaimFiledCase(BaseModel):
    id: str
    state: str
    claimants: int
    workers: int
    type: str


class ClaimFiled(BaseModel):
    claim_id: str
    receipt: str = Field(description="the worker's receipt: GET /v1/reports/{receipt}; shown once")
    case_id: str
    grouped: bool = Field(description="true: the claim joined an open case of the same enterprise and type")
    case: ClaimFiledCase
    rescored: bool = Field(description="true: mass wage arrears rescored the enterprise (supervision at tier >= 4)")


class ClaimItem(BaseModel):
    id: str
    channel: str
    type: str
    workers: int
    amount_cny: float | None
    district: str | None
    description: str
    claimant: str | None = Field(description="a keyed pseudonym, never the contact")
    received_by: str
    created_at: str


class ClaimOutcome(BaseModel):
    id: str
    recovered_cny: float | None
    injury_recognised: bool | None
    note: str | None


class ClaimCase(BaseModel):
    id: str
    enterprise_id: str
    type: str
    type_zh: str
    district: str | None
    state: Literal["accepted", "dispatched", "handled", "closed"]
    handler: NamedItem | None
    claimants: int
    workers: int
    amount_cny: float
    mass: bool
    urgency: int
    opened_at: str
    last_claim_at: str
    due_at: str
    overdue: bool
    escalation_level: int
    dispatched_at: str | None
    handled_at: str | None
    closed_at: str | None
    outcome: ClaimOutcome | None
    reopen_count: int
    transition_count: int
    supervision_order_id: str | None = Field(default=None, description="officers only")
    claims: list[ClaimItem] | None = Field(default=None, description="officers only")


class ClaimTransition(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: int
    action: str
    from_: str | None = Field(alias="from")
    to: str
    actor: str | None = Field(description="officers only")
    comment: str | None
    details: dict[str, Any] | None
    created_at: str


class ClaimRating(BaseModel):
    claim_id: str
    round: int
    satisfied: int
    resolved: bool
    comment: str | None
    created_at: str


class ClaimCaseDetail(ClaimCase):
    history: list[ClaimTransition]
    feedback: list[ClaimRating] | None = Field(default=None, description="officers only")


class ClaimCaseList(BaseModel):
    items: list[ClaimCase]
    total: int
    limit: int
    offset: int
    counts: dict[str, int]


class ClaimSplit(BaseModel):
    case: ClaimCaseDetail
    new_case: ClaimCaseDetail


class ClaimsEscalated(BaseModel):
    escalated: list[dict[str, Any]] = Field(description="[{case_id, level: {level, id, name_zh, name_en}}]")


class ClaimFigureRow(BaseModel):
    key: str
    claims: int
    closed: int
    closing_rate: float | None
    median_days_to_close: float | None
    ratings: int
    satisfied: int
    satisfaction_rate: float | None


class ClaimFigureWeek(BaseModel):
    week: str
    starts: str
    received: int
    closed: int
    closing_rate: float | None
    ratings: int
    satisfaction_rate: float | None


class ClaimCaseFigures(BaseModel):
    total: int
    by_state: dict[str, int]
    overdue: int
    mass: int


class ClaimFiguresBody(BaseModel):
    generated_at: str
    claims: int
    closed: int
    closing_rate: float | None = Field(description="办结率: claims whose case is closed / claims")
    median_days_to_close: float | None
    ratings: int
    satisfied: int
    satisfaction_rate: float | None = Field(description="ratings of 4 or 5 / ratings")
    cases: ClaimCaseFigures
    by: dict[str, list[ClaimFigureRow]] = Field(description="channel, type, district, handler")
    weekly: list[ClaimFigureWeek] = Field(description="the last 12 weeks, oldest first")
    stale: bool = Field(description="true: a recomputation after a change is under way; these are the previous")


class FeedbackAnswer(BaseModel):
    recorded: bool
    action: Literal["reopened", "supervision"] | None
    reopen_count: int | None = None
    order_id: str | None = Field(default=None, description="the supervision case (督办)")
