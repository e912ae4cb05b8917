"""The order store: rectification orders and supervision cases, their append-only transitions and
the webhook outbox, in the review store's database (SQLAlchemy Core; SQLite or PostgreSQL).

Every change is one transaction that updates the order row, appends a transition (who, when,
comment) and writes an outbox row for the webhook, so a notification is never lost and never
sent for a change that did not happen. A transition begins with a conditional UPDATE (state
must still be the action's source state), so two officers acting at once cannot both succeed,
and the write lock is taken before anything is read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from runtime.errors import InputError
from runtime.taxonomy import SUSPECTED_MAJOR, load_taxonomy
from serving.claims.schema import report_feedback
from serving.db import iso, utcnow
from serving.orders import receipts
from serving.orders.policy import RectificationPolicy, load_policy
from serving.orders.requests import MoveRequest, NewOrderRequest, NewSupervisionRequest, OrderFilter
from serving.orders.schema import orders, outbox, transitions
from serving.orders.states import (
    RECTIFIED_STATES,
    UNRECTIFIED_STATES,
    Viewer,
    check_action,
    wrong_state,
)
from serving.review.photos import PhotoStore
from serving.review.schema import cases, decisions

CONFIRMED_CASE_STATUSES = ("confirmed", "corrected")


@dataclass(frozen=True)
class Proof:
    """A proof photo already in the photo store, with the model's assessment of it."""

    sha256: str
    assessment: dict[str, Any]
    scene: dict[str, Any] | None = None  # serving/orders/proof.py: how alike the original's scene it is


def _public_order(row: Any) -> dict[str, Any]:
    """What a webhook receiver learns: the order, never a reporter or a photo."""
    return {
        "id": row.id,
        "kind": row.kind,
        "enterprise_id": row.enterprise_id,
        "site_id": row.site_id,
        "district": row.district,
        "state": row.state,
        "severity": row.severity,
        "hazard": row.hazard,
        "due_at": iso(row.due_at),
        "escalation_level": row.escalation_level,
    }


def _event(connection: sa.Connection, row: Any, event: str, *, now: dt.datetime, **extra: Any) -> None:
    payload = {"event": event, "at": iso(now), "order": _public_order(row), **extra}
    connection.execute(
        outbox.insert().values(order_id=row.id, event=event, payload=payload, created_at=now, next_attempt_at=now)
    )


def _append(
    connection: sa.Connection,
    row: Any,
    *,
    action: str,
    from_state: str | None,
    actor: str,
    comment: str | None,
    now: dt.datetime,
    details: dict[str, Any] | None = None,
) -> None:
    connection.execute(
        transitions.insert().values(
            order_id=row.id,
            action=action,
            from_state=from_state,
            to_state=row.state,
            actor=actor,
            comment=comment,
            details=details,
            created_at=now,
        )
    )
    _event(connection, row, f"order.{action}", now=now, **({"details": details} if details else {}))


class OrderStore:
    def __init__(self, *, engine: sa.Engine, photos: PhotoStore, policy: RectificationPolicy | None = None):
        self.engine, self.photos = engine, photos
        self.policy = policy or load_policy()

    @classmethod
    def beside(cls, review_store: Any, *, policy: RectificationPolicy | None = None) -> OrderStore:
        """On the review store's database and photo store (its migrations create the order tables)."""
        return cls(engine=review_store.engine, photos=review_store.photos, policy=policy)

    # --- receipts (serving/orders/receipts.py) -----------------------------------------------

    def issue_receipt(self, photo_id: str) -> str:
        return receipts.issue_receipt(self.engine, photo_id)

    # --- reading ---------------------------------------------------------------------------

    def _visible(self, viewer: Viewer) -> list[Any]:
        return [] if viewer.is_officer else [orders.c.enterprise_id == viewer.enterprise_id]

    def _row(self, connection: sa.Connection, order_id: str, viewer: Viewer) -> Any:
        row = connection.execute(sa.select(orders).where(orders.c.id == order_id, *self._visible(viewer))).first()
        if row is None:  # another enterprise's order is "not found", not "forbidden": no existence leak
            raise InputError("order_id", f"no order with id {order_id!r}", status_code=404)
        return row

    def order(self, order_id: str, *, viewer: Viewer) -> dict[str, Any]:
        """One order with its whole history (oldest first) and the before / after comparison."""
        with self.engine.connect() as connection:
            row = self._row(connection, order_id, viewer)
            history = connection.execute(
                sa.select(transitions).where(transitions.c.order_id == order_id).order_by(transitions.c.id)
            ).all()
            ratings = reporter_ratings(connection, order_id) if viewer.is_officer else None
        described = {
            **describe_order(row, viewer=viewer, now=utcnow()),
            "history": [describe_transition(entry) for entry in history],
        }
        if ratings is not None:  # the reporter's answers through the receipt, comments included: officers only
            described["feedback"] = ratings
        after = (described.get("comparison") or {}).get("after")
        if after is not None:  # the latest proof's scene similarity, recorded with its submission
            submitted = [e["details"] for e in described["history"] if e["action"] == "submit" and e["details"]]
            after["scene"] = submitted[-1].get("scene") if submitted else None
        return described

    def original_scene(self, order_id: str, *, viewer: Viewer) -> tuple[str | None, str | None]:
        """The sha256 and dHash (hex) of the order's original photo, (None, None) without one."""
        with self.engine.connect() as connection:
            row = self._row(connection, order_id, viewer)
            if row.photo_id is None:
                return None, None
            case = connection.execute(
                sa.select(cases.c.photo_sha256, cases.c.dhash).where(cases.c.photo_id == row.photo_id)
            ).first()
        return (case.photo_sha256, case.dhash) if case else (None, None)

    def proof_digest(self, order_id: str, which: str, *, viewer: Viewer) -> str:
        """sha256 of the order's original photo (its case's) or of its latest proof photo."""
        with self.engine.connect() as connection:
            row = self._row(connection, order_id, viewer)
            if which == "proof":
                digest = row.proof_sha256
            else:
                digest = (
                    connection.execute(sa.select(cases.c.photo_sha256).where(cases.c.photo_id == row.photo_id)).scalar()
                    if row.photo_id
                    else None
                )
        if digest is None:
            raise InputError("photo", f"this order has no {which} photo", status_code=404)
        return digest

    def orders(self, query: OrderFilter, *, viewer: Viewer, now: dt.datetime | None = None) -> dict[str, Any]:
        """One page of orders, soonest due first, the total that match and counts per state."""
        now = now or utcnow()
        where = [*self._visible(viewer), *filter_conditions(query, now=now)]
        states = [orders.c.state.in_(query.states)] if query.states else []
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(orders)
                .where(*where, *states)
                .order_by(orders.c.due_at, orders.c.id)
                .limit(query.limit)
                .offset(query.offset)
            ).all()
            total = connection.execute(
                sa.select(sa.func.count()).select_from(orders).where(*where, *states)
            ).scalar_one()
            counts = dict(
                connection.execute(
                    sa.select(orders.c.state, sa.func.count()).where(*where).group_by(orders.c.state)
                ).all()
            )
        return {
            "items": [describe_order(row, viewer=viewer, now=now) for row in rows],
            "total": total,
            "limit": query.limit,
            "offset": query.offset,
            "counts": counts,
        }

    # --- writing ---------------------------------------------------------------------------

    def _confirmed_case(self, connection: sa.Connection, photo_id: str) -> tuple[Any, list[str]]:
        case = connection.execute(sa.select(cases).where(cases.c.photo_id == photo_id)).first()
        if case is None:
            raise InputError("photo_id", f"no case with photo_id {photo_id!r}", status_code=404)
        if case.status not in CONFIRMED_CASE_STATUSES:
            raise InputError(
                "photo_id",
                f"the case is `{case.status}`; an order needs a case an officer "
                f"confirmed or corrected ({', '.join(CONFIRMED_CASE_STATUSES)})",
                status_code=409,
            )
        hazards = connection.execute(
            sa.select(decisions.c.hazards)
            .where(decisions.c.photo_id == photo_id)
            .order_by(decisions.c.id.desc())
            .limit(1)
        ).scalar_one()
        return case, list(hazards)

    def create_order(
        self, request: NewOrderRequest, *, viewer: Viewer, now: dt.datetime | None = None
    ) -> dict[str, Any]:
        """A rectification order from a confirmed case, due by its most severe hazard's default."""
        if not viewer.is_officer:
            raise InputError("authorization", "only union officers issue rectification orders", status_code=403)
        now = now or utcnow()
        try:
            return self._create_order(request, viewer=viewer, now=now)
        except sa.exc.IntegrityError:  # a second order for the case, created at the same moment
            raise InputError("photo_id", "this case already has a rectification order", status_code=409) from None

    def _create_order(self, request: NewOrderRequest, *, viewer: Viewer, now: dt.datetime) -> dict[str, Any]:
        with self.engine.begin() as connection:
            case, hazards = self._confirmed_case(connection, request.photo_id)
            hazard = request.hazard or _main_hazard(hazards, case.probabilities)
            if hazard not in hazards:
                raise InputError("hazard", f"{hazard!r} is not among the case's confirmed hazards {hazards}")
            if connection.execute(sa.select(orders.c.id).where(orders.c.photo_id == request.photo_id)).first():
                raise InputError("photo_id", "this case already has a rectification order", status_code=409)
            severity = self.policy.severity_of([hazard])
            values = {
                "id": uuid.uuid4().hex,
                "kind": "rectification",
                "photo_id": request.photo_id,
                "enterprise_id": request.enterprise_id,
                "site_id": request.site_id or case.site_id,
                "district": request.district,
                "assignee": request.assignee,
                "officer": viewer.actor,
                "measures": request.measures,
                "hazard": hazard,
                "hazards": hazards,
                "severity": severity,
                "major": self.policy.severity_of(hazards) == SUSPECTED_MAJOR,
                "original_probability": case.probabilities.get(hazard),
            }
            due_at = request.due_at or self.policy.due_time(severity, created_at=now)
            return self._insert(connection, values, due_at=due_at, actor=viewer.actor, now=now, viewer=viewer)

    def create_supervision(
        self, request: NewSupervisionRequest, *, viewer: Viewer, now: dt.datetime | None = None
    ) -> dict[str, Any]:
        """A supervision case (督办) for an enterprise at a high risk tier; one active case per enterprise."""
        if not viewer.is_officer:
            raise InputError("authorization", "only union officers open supervision cases", status_code=403)
        if request.risk_tier < self.policy.supervision_min_tier:
            raise InputError(
                "risk_tier",
                f"supervision is for risk tier {self.policy.supervision_min_tier} or higher, not {request.risk_tier}",
            )
        now = now or utcnow()
        with self.engine.begin() as connection:
            active = connection.execute(
                sa.select(orders.c.id).where(
                    orders.c.kind == "supervision",
                    orders.c.enterprise_id == request.enterprise_id,
                    orders.c.state != "closed",
                )
            ).scalar()
            if active:
                raise InputError(
                    "enterprise_id",
                    f"enterprise {request.enterprise_id!r} already has an active supervision case {active}",
                    status_code=409,
                    order_id=active,
                )
            values = {
                "id": uuid.uuid4().hex,
                "kind": "supervision",
                "enterprise_id": request.enterprise_id,
                "district": request.district,
                "officer": request.officer or viewer.actor,
                "notes": request.notes,
                "hazards": [],
                "severity": "督办",
                "major": False,
                "risk_tier": request.risk_tier,
            }
            return self._insert(
                connection,
                values,
                due_at=request.due_at or now + self.policy.supervision_due,
                actor=viewer.actor,
                now=now,
                viewer=viewer,
            )

    def _insert(
        self,
        connection: sa.Connection,
        values: dict[str, Any],
        *,
        due_at: dt.datetime,
        actor: str,
        now: dt.datetime,
        viewer: Viewer,
    ) -> dict[str, Any]:
        connection.execute(
            orders.insert().values(
                **values, state="open", due_at=due_at, created_at=now, updated_at=now, transition_count=1
            )
        )
        row = connection.execute(sa.select(orders).where(orders.c.id == values["id"])).one()
        _append(connection, row, action="create", from_state=None, actor=actor, comment=None, now=now)
        return describe_order(row, viewer=viewer, now=now)

    def transition(
        self,
        order_id: str,
        move: MoveRequest,
        *,
        viewer: Viewer,
        proof: Proof | None = None,
        now: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Take one action on an order; 409 naming the state when the order is not where the action starts."""
        source, target = check_action(move.action, viewer=viewer)
        now = now or utcnow()
        values: dict[str, Any] = {"state": target, "updated_at": now, "transition_count": orders.c.transition_count + 1}
        values.update(_moment_columns(target, now) | _proof_columns(proof) | _outcome_column(move))
        guard = [orders.c.id == order_id, orders.c.state == source, *self._visible(viewer)]
        if move.action == "submit" and proof is None:
            guard.append(orders.c.kind == "supervision")  # a rectification order is submitted with a proof photo
        with self.engine.begin() as connection:
            changed = connection.execute(orders.update().where(*guard).values(**values)).rowcount
            row = self._row(connection, order_id, viewer)
            if changed != 1:
                raise self._refusal(row, move.action)
            _append(
                connection,
                row,
                action=move.action,
                from_state=source,
                actor=viewer.actor,
                comment=move.comment,
                now=now,
                details=_proof_details(row, proof),
            )
        return describe_order(row, viewer=viewer, now=now)

    def amend(
        self,
        order_id: str,
        changes: dict[str, Any],
        *,
        viewer: Viewer,
        comment: str | None = None,
        now: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Change who is responsible, the measures, notes or due time; the history keeps old and new values."""
        if not viewer.is_officer:
            raise InputError("authorization", "only union officers amend an order", status_code=403)
        now = now or utcnow()
        with self.engine.begin() as connection:
            old = self._row(connection, order_id, viewer)
            changed = connection.execute(
                orders.update()
                .where(  # unchanged since read, else retry
                    orders.c.id == order_id, orders.c.transition_count == old.transition_count
                )
                .values(**changes, updated_at=now, transition_count=orders.c.transition_count + 1)
            ).rowcount
            if changed != 1:
                raise InputError(
                    "order_id",
                    "the order changed while you edited it; reload and retry",
                    status_code=409,
                    state=old.state,
                )
            row = self._row(connection, order_id, viewer)
            details = {
                "before": {name: _jsonable(old._mapping[name]) for name in changes},
                "after": {name: _jsonable(row._mapping[name]) for name in changes},
            }
            _append(
                connection,
                row,
                action="amend",
                from_state=row.state,
                actor=viewer.actor,
                comment=comment,
                now=now,
                details=details,
            )
        return describe_order(row, viewer=viewer, now=now)

    @staticmethod
    def _refusal(row: Any, action: str) -> InputError:
        if row.state == "in_progress" and action == "submit":
            return InputError(
                "photo",
                "a rectification order is submitted with a proof photo: POST it as "
                f"`photo` to /v1/orders/{row.id}/proof",
            )
        return wrong_state(action, row.state)

    def escalate_overdue(
        self, *, now: dt.datetime | None = None, actor: str = "system:escalation"
    ) -> list[dict[str, Any]]:
        """Raise every unrectified, overdue order to the escalation level its delay has reached."""
        now = now or utcnow()
        top = len(self.policy.escalation)
        escalated = []
        with self.engine.begin() as connection:
            candidates = connection.execute(
                sa.select(orders).where(
                    orders.c.state.in_(UNRECTIFIED_STATES), orders.c.due_at < now, orders.c.escalation_level < top
                )
            ).all()
            for candidate in candidates:
                level = self.policy.level_at(due_at=candidate.due_at, now=now)
                if level <= candidate.escalation_level:
                    continue
                changed = connection.execute(
                    orders.update()
                    .where(
                        orders.c.id == candidate.id,
                        orders.c.escalation_level == candidate.escalation_level,
                        orders.c.state.in_(UNRECTIFIED_STATES),
                    )
                    .values(escalation_level=level, updated_at=now, transition_count=orders.c.transition_count + 1)
                ).rowcount
                if changed != 1:  # another worker escalated it, or it was rectified, meanwhile
                    continue
                row = connection.execute(sa.select(orders).where(orders.c.id == candidate.id)).one()
                target = self.policy.escalation[level - 1].describe()
                _append(
                    connection,
                    row,
                    action="escalate",
                    from_state=row.state,
                    actor=actor,
                    now=now,
                    comment=f"overdue since {iso(row.due_at)}; escalated to {target['name_en']}",
                    details={"level": target},
                )
                escalated.append({"order_id": row.id, "level": target})
        return escalated

    # --- for the risk model ----------------------------------------------------------------

    def supervise_high_tiers(
        self, results: list[dict[str, Any]], *, now: dt.datetime | None = None, actor: str = "system:risk-tier"
    ) -> dict[str, dict[str, Any]]:
        """Open a supervision case (督办) for each scored enterprise at the policy's tier or above that has
        none active; returns {enterprise_id: {"order_id", "state", "opened"}} for all of them."""
        floor = self.policy.supervision_min_tier
        high = {str(r["enterprise_id"]): int(r["tier"]) for r in results if r["tier"] >= floor}
        if not high:
            return {}
        now = now or utcnow()
        with self.engine.begin() as connection:
            active = {
                row.enterprise_id: row
                for row in connection.execute(
                    sa.select(orders.c.id, orders.c.enterprise_id, orders.c.state).where(
                        orders.c.kind == "supervision",
                        orders.c.state != "closed",
                        orders.c.enterprise_id.in_(sorted(high)),
                    )
                )
            }
            cases = {key: {"order_id": row.id, "state": row.state, "opened": False} for key, row in active.items()}
            for enterprise_id in sorted(set(high) - set(active)):
                values = {
                    "id": uuid.uuid4().hex,
                    "kind": "supervision",
                    "enterprise_id": enterprise_id,
                    "officer": "unassigned",
                    "hazards": [],
                    "severity": "督办",
                    "major": False,
                    "risk_tier": high[enterprise_id],
                    "notes": f"opened automatically: risk tier {high[enterprise_id]}",
                }
                self._insert(
                    connection,
                    values,
                    due_at=now + self.policy.supervision_due,
                    actor=actor,
                    now=now,
                    viewer=Viewer(actor=actor),
                )
                cases[enterprise_id] = {"order_id": values["id"], "state": "open", "opened": True}
        return cases

    def open_photo_hazards(self, enterprise_ids: list[str]) -> dict[str, tuple[int, int]]:
        """(open hazards, open suspected-major hazards) from rectification orders, for each of the given
        enterprises that has any rectification order (0, 0 once all are rectified)."""
        wanted = sorted({str(e) for e in enterprise_ids})
        if not wanted:
            return {}
        major = {hazard.id for hazard in load_taxonomy().values() if hazard.is_suspected_major}
        counts: dict[str, tuple[int, int]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                rows = connection.execute(
                    sa.select(orders.c.enterprise_id, orders.c.state, orders.c.hazards).where(
                        orders.c.kind == "rectification", orders.c.enterprise_id.in_(wanted[start : start + 500])
                    )
                ).all()
                for row in rows:
                    total, severe = counts.get(row.enterprise_id, (0, 0))
                    if row.state in UNRECTIFIED_STATES:
                        total, severe = total + len(row.hazards), severe + len(major & set(row.hazards))
                    counts[row.enterprise_id] = (total, severe)
        return counts


def _main_hazard(hazards: list[str], probabilities: dict[str, float]) -> str | None:
    """The hazard an order compares before / after: suspected major first, then the most probable."""
    taxonomy = load_taxonomy()
    ranked = sorted(
        hazards, key=lambda h: (not (h in taxonomy and taxonomy[h].is_suspected_major), -probabilities.get(h, 0.0))
    )
    return ranked[0] if ranked else None


def _jsonable(value: Any) -> Any:
    return iso(value) if isinstance(value, dt.datetime) else value


def _moment_columns(target: str, now: dt.datetime) -> dict[str, Any]:
    return {"verified": {"rectified_at": now}, "closed": {"closed_at": now}}.get(target, {})


def _proof_columns(proof: Proof | None) -> dict[str, Any]:
    if proof is None:
        return {}
    return {"proof_sha256": proof.sha256, "proof_probabilities": proof.assessment["hazards"]}


def _outcome_column(move: MoveRequest) -> dict[str, Any]:
    return {"outcome": move.outcome} if move.outcome else {}


def _proof_details(row: Any, proof: Proof | None) -> dict[str, Any] | None:
    if proof is None:
        return None
    return {
        "proof_sha256": proof.sha256,
        "model": proof.assessment["model"],
        "hazard": row.hazard,
        "probability_before": row.original_probability,
        "probability_after": proof.assessment["hazards"].get(row.hazard) if row.hazard else None,
        "flagged_after": [item["type"] for item in proof.assessment["flagged"]],
        **({"scene": proof.scene} if proof.scene else {}),
    }


def filter_conditions(query: OrderFilter, *, now: dt.datetime) -> list[Any]:
    conditions = []
    for column, value in (
        (orders.c.kind, query.kind),
        (orders.c.enterprise_id, query.enterprise_id),
        (orders.c.site_id, query.site),
        (orders.c.district, query.district),
        (orders.c.hazard, query.hazard),
    ):
        if value is not None:
            conditions.append(column == value)
    if query.overdue:
        conditions += [orders.c.state.in_(UNRECTIFIED_STATES), orders.c.due_at < now]
    return conditions


def describe_order(row: Any, *, viewer: Viewer, now: dt.datetime) -> dict[str, Any]:
    taxonomy = load_taxonomy()
    overdue = row.state in UNRECTIFIED_STATES and row.due_at < now
    described = {
        "id": row.id,
        "kind": row.kind,
        "state": row.state,
        "enterprise_id": row.enterprise_id,
        "site_id": row.site_id,
        "district": row.district,
        "assignee": row.assignee,
        "officer": row.officer,
        "measures": row.measures,
        "notes": row.notes,
        "outcome": row.outcome,
        "severity": row.severity,
        "hazards": [taxonomy[h].describe() if h in taxonomy else {"type": h} for h in row.hazards],
        "risk_tier": row.risk_tier,
        "created_at": iso(row.created_at),
        "due_at": iso(row.due_at),
        "updated_at": iso(row.updated_at),
        "rectified_at": iso(row.rectified_at),
        "closed_at": iso(row.closed_at),
        "overdue": overdue,
        "escalation_level": row.escalation_level,
        "transition_count": row.transition_count,
        "rectified": row.state in RECTIFIED_STATES,
    }
    if row.kind == "rectification":
        described["comparison"] = {
            "hazard": row.hazard,
            "before": {"probability": row.original_probability, "photo": f"/v1/orders/{row.id}/photos/original"},
            "after": None
            if row.proof_sha256 is None
            else {
                "probability": (row.proof_probabilities or {}).get(row.hazard),
                "photo": f"/v1/orders/{row.id}/photos/proof",
            },
        }
    if viewer.is_officer:
        described["photo_id"] = row.photo_id  # the review case; enterprise keys cannot open it anyway
    return described


def reporter_ratings(connection: sa.Connection, order_id: str) -> list[dict[str, Any]]:
    """The reporter's ratings of the order's closed stages (serving/claims/feedback.py), oldest first."""
    rows = connection.execute(
        sa.select(report_feedback)
        .where(report_feedback.c.case_id == order_id, report_feedback.c.photo_id.is_not(None))
        .order_by(report_feedback.c.id)
    ).all()
    return [
        {
            "round": row.round,
            "satisfied": row.satisfied,
            "resolved": row.resolved,
            "comment": row.comment,
            "created_at": iso(row.created_at),
        }
        for row in rows
    ]


def describe_transition(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "action": row.action,
        "from": row.from_state,
        "to": row.to_state,
        "actor": row.actor,
        "comment": row.comment,
        "details": row.details,
        "created_at": iso(row.created_at),
    }
