"""Workers answer through their receipt, without identity (claims and photo reports alike).

`receipt_status` answers a receipt code with the report's stage and a timeline (received, dispatched
to whom, handled, closed; for photos: reviewed, rectification ordered, rectified, closed), days
only, never a claimant, a reporter, another claim or an officer's name. `give_feedback` takes one
rating per closed stage: `resolved: false` reopens the case (or the photo's order) for an officer's
re-check, at most `reopen_limit` times; the next "not resolved" opens supervision (督办) instead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from runtime.errors import InputError
from serving.claims.policy import ClaimsPolicy, load_policy
from serving.claims.requests import FeedbackRequest
from serving.claims.schema import claim_cases, claim_transitions, claims, report_feedback
from serving.claims.states import OPEN_STATES
from serving.claims.store import ClaimStore
from serving.db import utcnow
from serving.orders import receipts
from serving.orders.requests import NewSupervisionRequest
from serving.orders.schema import orders, transitions
from serving.orders.states import Viewer as OrderViewer

CLAIM_STAGES = {  # case state: (Chinese, English) said to the worker
    "accepted": ("已受理，等待分派", "received; waiting to be dispatched"),
    "dispatched": ("已分派承办单位办理", "dispatched to a handler"),
    "handled": ("承办单位已办理，等待办结", "handled; waiting to be closed"),
    "closed": ("已办结", "closed"),
}
TIMELINE_EVENTS = {  # transition action: (Chinese, English); actions not listed are not shown to workers
    "accept": ("受理", "received"),
    "dispatch": ("分派", "dispatched"),
    "handle": ("办理", "handled"),
    "close": ("办结", "closed"),
    "reopen": ("重新办理（职工反馈未解决）", "reopened: the worker said it was not resolved"),
    "escalate": ("超期督促", "overdue: escalated"),
    "supervise": ("转督办", "sent to supervision (督办)"),
    # photo reports' rectification orders
    "create": ("下达整改", "rectification ordered"),
    "start": ("企业开始整改", "the enterprise started rectifying"),
    "submit": ("企业提交整改", "the enterprise reported the rectification"),
    "verify": ("整改复查通过", "rectification checked and accepted"),
    "reject": ("整改复查未通过", "rectification checked and refused"),
}
FEEDBACK_PHOTO_STATES = ("verified", "closed")


def _day(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.date().isoformat()


def _event(action: str, moment: dt.datetime, **extra: Any) -> dict[str, Any]:
    zh, en = TIMELINE_EVENTS[action]
    return {"event": action, "on": _day(moment), "message_zh": zh, "message_en": en, **extra}


class Receipts:
    """Receipt lookups and feedback over the claims and order tables of one database."""

    def __init__(self, *, engine: sa.Engine, orders: Any = None, policy: ClaimsPolicy | None = None):
        self.engine, self.orders = engine, orders
        self.policy = policy or load_policy()

    # --- looking up ------------------------------------------------------------------------

    def _claim(self, connection: sa.Connection, digest: str) -> Any:
        return connection.execute(
            sa.select(claims.c.id.label("claim_id"), claims.c.created_at.label("claimed_at"), claim_cases)
            .join(claim_cases, claim_cases.c.id == claims.c.case_id)
            .where(claims.c.receipt_sha256 == digest)
        ).first()

    def _photo(self, connection: sa.Connection, digest: str) -> Any:
        return connection.execute(
            sa.select(receipts.receipts.c.photo_id, orders.c.id.label("order_id"), orders.c.state)
            .outerjoin(orders, orders.c.photo_id == receipts.receipts.c.photo_id)
            .where(receipts.receipts.c.code_sha256 == digest)
        ).first()

    def status(self, code: str) -> dict[str, Any]:
        """The report's stage and timeline; 404 for an unknown code (also a malformed one)."""
        digest = receipts.code_digest(code)
        with self.engine.connect() as connection:
            claim = self._claim(connection, digest)
            if claim is not None:
                return self._claim_status(connection, claim)
            photo = self._photo(connection, digest)
            if photo is None:
                raise InputError("receipt", "no report has this receipt code", status_code=404)
            events = self._order_events(connection, photo.order_id) if photo.order_id else []
            given = self._rounds_answered(connection, report_feedback.c.photo_id == photo.photo_id)
            reopened = sum(1 for event in events if event["event"] == "reopen")
        status = receipts.report_status(self.engine, code)
        timeline = [
            {"event": "received", "on": status["reported_on"], "message_zh": "已收到", "message_en": "received"}
        ]
        if status["stage"] != "received":
            timeline.append(
                {
                    "event": "reviewed",
                    "on": None,
                    "message_zh": status["message_zh"],
                    "message_en": status["message_en"],
                }
            )
        timeline += events
        return {
            "kind": "photo_report",
            **status,
            "timeline": timeline,
            "feedback": self._feedback_state(photo.state in FEEDBACK_PHOTO_STATES, reopened, given),
        }

    def _claim_status(self, connection: sa.Connection, claim: Any) -> dict[str, Any]:
        history = connection.execute(
            sa.select(claim_transitions)
            .where(claim_transitions.c.case_id == claim.id, claim_transitions.c.created_at >= claim.claimed_at)
            .order_by(claim_transitions.c.id)
        ).all()
        timeline = [_event("accept", claim.claimed_at)]
        for entry in history:
            if entry.action == "dispatch":
                handler = (entry.details or {}).get("handler", {})
                timeline.append(_event("dispatch", entry.created_at, handler=handler or None))
            elif entry.action == "close":
                outcome = (entry.details or {}).get("outcome")
                named = self.policy.outcomes.get(outcome)
                timeline.append(
                    _event(
                        "close",
                        entry.created_at,
                        outcome=None if named is None else named.describe(),
                        recovered_cny=(entry.details or {}).get("recovered_cny"),
                    )
                )
            elif entry.action in TIMELINE_EVENTS and entry.action != "accept":
                timeline.append(_event(entry.action, entry.created_at))
        given = self._rounds_answered(connection, report_feedback.c.claim_id == claim.claim_id)
        zh, en = CLAIM_STAGES[claim.state]
        return {
            "kind": "claim",
            "stage": claim.state,
            "message_zh": zh,
            "message_en": en,
            "type": claim.type,
            "reported_on": _day(claim.claimed_at),
            "due_on": _day(claim.due_at) if claim.state in OPEN_STATES else None,
            "closed_on": _day(claim.closed_at) if claim.state == "closed" else None,
            "timeline": timeline,
            "feedback": self._feedback_state(claim.state == "closed", claim.reopen_count, given),
        }

    @staticmethod
    def _rounds_answered(connection: sa.Connection, which: Any) -> set[int]:
        return set(connection.execute(sa.select(report_feedback.c.round).where(which)).scalars())

    @staticmethod
    def _feedback_state(closed: bool, round_: int, given: set[int]) -> dict[str, Any]:
        return {"open": closed and round_ not in given, "given": len(given)}

    def _order_events(self, connection: sa.Connection, order_id: str) -> list[dict[str, Any]]:
        rows = connection.execute(
            sa.select(transitions.c.action, transitions.c.created_at)
            .where(transitions.c.order_id == order_id)
            .order_by(transitions.c.id)
        ).all()
        return [_event(row.action, row.created_at) for row in rows if row.action in TIMELINE_EVENTS]

    # --- answering -------------------------------------------------------------------------

    def give_feedback(self, code: str, feedback: FeedbackRequest, *, now: dt.datetime | None = None) -> dict[str, Any]:
        """Record the worker's rating of the current closed stage; reopen or supervise when not resolved."""
        digest = receipts.code_digest(code)
        now = now or utcnow()
        with self.engine.connect() as connection:
            claim = self._claim(connection, digest)
            photo = None if claim is not None else self._photo(connection, digest)
        if claim is None and photo is None:
            raise InputError("receipt", "no report has this receipt code", status_code=404)
        try:
            if claim is not None:
                result = self._claim_feedback(claim, feedback, now=now)
            else:
                result = self._photo_feedback(photo, feedback, now=now)
        except sa.exc.IntegrityError:  # the same stage answered twice at the same moment
            raise InputError("receipt", "this stage already has your feedback", status_code=409) from None
        return {"recorded": True, **result}

    def _not_closed(self) -> InputError:
        return InputError(
            "receipt", "feedback is for a closed stage; this report is still being handled", status_code=409
        )

    def _claim_feedback(self, claim: Any, feedback: FeedbackRequest, *, now: dt.datetime) -> dict[str, Any]:
        store = ClaimStore(engine=self.engine, policy=self.policy, orders=self.orders)
        with self.engine.begin() as connection:
            case = connection.execute(sa.select(claim_cases).where(claim_cases.c.id == claim.id)).one()
            if case.state != "closed":
                raise self._not_closed()
            self._insert(
                connection, feedback, now=now, round_=case.reopen_count, claim_id=claim.claim_id, case_id=case.id
            )
            if feedback.resolved:
                return {"action": None}
            if case.reopen_count < self.policy.reopen_limit:
                return self._reopen_case(connection, store, case, now=now)
        # not resolved once more than the policy allows: supervision, after the feedback is committed
        # (the order store writes in its own transaction; SQLite has one writer at a time)
        if case.supervision_order_id:
            return {"action": "supervision", "order_id": case.supervision_order_id}
        order_id = self._open_supervision(
            case.enterprise_id,
            case.district,
            f"claim case {case.id}: a worker said 'not resolved' after {case.reopen_count} reopenings",
        )
        with self.engine.begin() as connection:
            connection.execute(
                claim_cases.update()
                .where(claim_cases.c.id == case.id)
                .values(supervision_order_id=order_id, updated_at=now)
            )
            row = connection.execute(sa.select(claim_cases).where(claim_cases.c.id == case.id)).one()
            store._append(
                connection,
                row,
                action="supervise",
                from_state=row.state,
                actor="system:worker-feedback",
                now=now,
                details={"order_id": order_id},
            )
        return {"action": "supervision", "order_id": order_id}

    def _reopen_case(
        self, connection: sa.Connection, store: ClaimStore, case: Any, *, now: dt.datetime
    ) -> dict[str, Any]:
        changed = connection.execute(
            claim_cases.update()
            .where(
                claim_cases.c.id == case.id,
                claim_cases.c.state == "closed",
                claim_cases.c.reopen_count == case.reopen_count,
            )
            .values(
                state="accepted",
                reopen_count=case.reopen_count + 1,
                due_at=self.policy.due_time(case.type, accepted_at=now),
                escalation_level=0,
                closed_at=None,
                updated_at=now,
            )
        ).rowcount
        if changed != 1:  # another worker reopened it a moment ago: one reopening is enough
            return {"action": None}
        row = connection.execute(sa.select(claim_cases).where(claim_cases.c.id == case.id)).one()
        store._append(
            connection,
            row,
            action="reopen",
            from_state="closed",
            actor="system:worker-feedback",
            now=now,
            comment="a worker said it was not resolved",
            details={"reopen_count": row.reopen_count},
        )
        return {"action": "reopened", "reopen_count": row.reopen_count}

    def _open_supervision(self, enterprise_id: str, district: str | None, notes: str) -> str | None:
        """A supervision case (督办) for the enterprise through the order store, or its active one."""
        if self.orders is None:
            return None
        request = NewSupervisionRequest(
            enterprise_id=enterprise_id,
            risk_tier=self.orders.policy.supervision_min_tier,
            officer=None,
            district=district,
            notes=notes,
            due_at=None,
        )
        try:
            return self.orders.create_supervision(request, viewer=OrderViewer(actor="system:worker-feedback"))["id"]
        except InputError as error:
            if error.status_code == 409 and "order_id" in error.context:
                return error.context["order_id"]
            raise

    def _photo_feedback(self, photo: Any, feedback: FeedbackRequest, *, now: dt.datetime) -> dict[str, Any]:
        if photo.order_id is None or photo.state not in FEEDBACK_PHOTO_STATES:
            raise self._not_closed()
        with self.engine.begin() as connection:
            reopened = connection.execute(
                sa.select(sa.func.count()).where(
                    transitions.c.order_id == photo.order_id, transitions.c.action == "reopen"
                )
            ).scalar_one()
            self._insert(
                connection, feedback, now=now, round_=reopened, photo_id=photo.photo_id, case_id=photo.order_id
            )
            if feedback.resolved:
                return {"action": None}
            order = connection.execute(sa.select(orders).where(orders.c.id == photo.order_id)).one()
            if reopened < self.policy.reopen_limit:
                return self._reopen_order(connection, order, reopened, now=now)
        notes = f"order {order.id}: the reporter said 'not resolved' after {reopened} reopenings"
        return {"action": "supervision", "order_id": self._open_supervision(order.enterprise_id, order.district, notes)}

    @staticmethod
    def _reopen_order(connection: sa.Connection, order: Any, reopened: int, *, now: dt.datetime) -> dict[str, Any]:
        from serving.orders.store import _append as append_order_transition  # the order store's own writer

        changed = connection.execute(
            orders.update()
            .where(orders.c.id == order.id, orders.c.state.in_(FEEDBACK_PHOTO_STATES))
            .values(
                state="in_progress",
                rectified_at=None,
                closed_at=None,
                updated_at=now,
                transition_count=orders.c.transition_count + 1,
            )
        ).rowcount
        if changed != 1:
            return {"action": None}
        row = connection.execute(sa.select(orders).where(orders.c.id == order.id)).one()
        append_order_transition(
            connection,
            row,
            action="reopen",
            from_state=order.state,
            actor="system:reporter-feedback",
            comment="the reporter said it was not resolved",
            now=now,
        )
        return {"action": "reopened", "reopen_count": reopened + 1}

    @staticmethod
    def _insert(
        connection: sa.Connection, feedback: FeedbackRequest, *, now: dt.datetime, round_: int, **subject: Any
    ) -> None:
        key = report_feedback.c.claim_id if "claim_id" in subject else report_feedback.c.photo_id
        value = subject.get("claim_id") or subject.get("photo_id")
        if connection.execute(
            sa.select(report_feedback.c.id).where(key == value, report_feedback.c.round == round_)
        ).first():
            raise InputError("receipt", "this stage already has your feedback", status_code=409)
        connection.execute(
            report_feedback.insert().values(
                round=round_,
                satisfied=feedback.satisfied,
                resolved=feedback.resolved,
                comment=feedback.comment,
                created_at=now,
                **subject,
            )
        )
