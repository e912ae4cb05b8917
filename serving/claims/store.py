"""The claims store: workers' claims from every channel, grouped into cases, dispatched, handled and
closed (SQLAlchemy Core on the review store's database; SQLite or PostgreSQL).

One queue, no double counting: a claim joins the open case of the same enterprise and type whose
latest claim is at most `group_window_days` old, else it opens a new case. Filing takes the
database's write lock (PostgreSQL: an advisory lock per enterprise and type; SQLite: the write
statement that begins the transaction) before it looks for that case, so two claims filed at the
same moment cannot open two cases. A case's counts (claimants, workers, amount) are recomputed from
its claims in the same transaction as every change to them.

Every change to a case appends a transition and, in the same transaction, a row to the orders'
outbox (serving/orders/outbox.py delivers it to the same webhook): never a claimant, never a
description.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import sqlalchemy as sa

from runtime.errors import InputError
from serving.claims.policy import ClaimsPolicy, load_policy
from serving.claims.requests import CaseFilter, CaseMoveRequest, NewClaimRequest
from serving.claims.schema import claim_cases, claim_transitions, claims, report_feedback
from serving.claims.states import ACTIONS, ENTERPRISE_HANDLER, OPEN_STATES, Viewer, wrong_state
from serving.db import iso as _iso
from serving.db import utcnow
from serving.orders import receipts
from serving.orders.schema import outbox

CLAIMS_SHOWN = 100  # claims listed per case in the queue; the case's own page lists them all
YEAR = dt.timedelta(days=365)


def _lock_key(enterprise_id: str, claim_type: str) -> int:
    """A signed 64-bit advisory lock id for one (enterprise, type) grouping key."""
    digest = hashlib.sha256(f"claims\0{enterprise_id}\0{claim_type}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _take_write_lock(connection: sa.Connection, enterprise_id: str, claim_type: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(enterprise_id, claim_type)})
    else:  # a write statement first: SQLite takes its one write lock before the grouping read below
        connection.execute(claim_cases.update().where(claim_cases.c.id == "").values(updated_at=None))


def public_case(row: Any) -> dict[str, Any]:
    """What a webhook receiver learns of a case: no claimant, no description."""
    return {
        "id": row.id,
        "enterprise_id": row.enterprise_id,
        "type": row.type,
        "district": row.district,
        "state": row.state,
        "handler": row.handler,
        "claimants": row.claimants,
        "workers": row.workers,
        "due_at": _iso(row.due_at),
        "escalation_level": row.escalation_level,
    }


class ClaimStore:
    def __init__(self, *, engine: sa.Engine, policy: ClaimsPolicy | None = None, orders: Any = None):
        self.engine = engine
        self.policy = policy or load_policy()
        self.orders = orders  # serving.orders.store.OrderStore: supervision after too many reopenings

    @classmethod
    def beside(cls, order_store: Any, *, policy: ClaimsPolicy | None = None) -> ClaimStore:
        """On the order store's database (the review store's migrations create the claims tables)."""
        return cls(engine=order_store.engine, policy=policy, orders=order_store)

    # --- filing ----------------------------------------------------------------------------

    def file_claim(self, claim: NewClaimRequest, *, received_by: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """Record one claim (its `claimant` must already be a pseudonym) in its case; answers the claim
        id, the receipt code (shown once, only its hash is kept), the case and whether it was new."""
        now = now or utcnow()
        code = receipts.new_code()
        claim_id = uuid.uuid4().hex
        with self.engine.begin() as connection:
            _take_write_lock(connection, claim.enterprise_id, claim.type)
            case_id = self._open_case_for(connection, claim, now=now)
            grouped = case_id is not None
            if case_id is None:
                case_id = self._new_case(connection, claim, now=now, received_by=received_by)
            connection.execute(
                claims.insert().values(
                    id=claim_id,
                    case_id=case_id,
                    channel=claim.channel,
                    type=claim.type,
                    enterprise_id=claim.enterprise_id,
                    district=claim.district,
                    workers=claim.workers,
                    amount_cny=claim.amount_cny,
                    description=claim.description,
                    claimant=claim.claimant,
                    receipt_sha256=receipts.code_digest(code),
                    received_by=received_by,
                    created_at=now,
                )
            )
            row = self._refresh(connection, case_id, now=now)
            if grouped:
                self._append(
                    connection,
                    row,
                    action="add_claim",
                    from_state=row.state,
                    actor=received_by,
                    now=now,
                    details={"claim_id": claim_id, "channel": claim.channel, "workers": claim.workers},
                )
        return {
            "claim_id": claim_id,
            "receipt": code,
            "case_id": case_id,
            "grouped": grouped,
            "case": describe_case(row, viewer=Viewer(actor=received_by), now=now),
        }

    def _open_case_for(self, connection: sa.Connection, claim: NewClaimRequest, *, now: dt.datetime) -> str | None:
        return connection.execute(
            sa.select(claim_cases.c.id)
            .where(
                claim_cases.c.enterprise_id == claim.enterprise_id,
                claim_cases.c.type == claim.type,
                claim_cases.c.state.in_(OPEN_STATES),
                claim_cases.c.last_claim_at >= now - self.policy.group_window,
            )
            .order_by(claim_cases.c.last_claim_at.desc())
            .limit(1)
        ).scalar()

    def _new_case(
        self, connection: sa.Connection, claim: NewClaimRequest, *, now: dt.datetime, received_by: str
    ) -> str:
        urgency = self.policy.urgency(claim.type, claim.workers)
        case_id = self._insert_case(
            connection,
            enterprise_id=claim.enterprise_id,
            type=claim.type,
            district=claim.district,
            urgency=urgency,
            now=now,
        )
        row = connection.execute(sa.select(claim_cases).where(claim_cases.c.id == case_id)).one()
        self._append(connection, row, action="accept", from_state=None, actor=received_by, now=now)
        return case_id

    def _insert_case(
        self,
        connection: sa.Connection,
        *,
        enterprise_id: str,
        type: str,
        district: str | None,
        now: dt.datetime,
        urgency: int = 0,
    ) -> str:
        """A new accepted case, due by its type's deadline; `_refresh` sets its counts (and urgency) from
        the claims once they are in it."""
        case_id = uuid.uuid4().hex
        connection.execute(
            claim_cases.insert().values(
                id=case_id,
                enterprise_id=enterprise_id,
                type=type,
                district=district,
                state="accepted",
                urgency=urgency,
                opened_at=now,
                last_claim_at=now,
                due_at=self.policy.due_time(type, accepted_at=now),
                updated_at=now,
                transition_count=0,
            )
        )
        return case_id

    def _refresh(self, connection: sa.Connection, case_id: str, *, now: dt.datetime) -> Any:
        """Recompute a case's counts from its claims (after claims joined or left it); returns the row."""
        count, workers, amount, latest, district = connection.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(claims.c.workers), 0),
                sa.func.coalesce(sa.func.sum(claims.c.amount_cny), 0),
                sa.func.max(claims.c.created_at),
                sa.func.max(claims.c.district),
            ).where(claims.c.case_id == case_id)
        ).one()
        row = connection.execute(sa.select(claim_cases).where(claim_cases.c.id == case_id)).one()
        connection.execute(
            claim_cases.update()
            .where(claim_cases.c.id == case_id)
            .values(
                claimants=int(count),
                workers=int(workers),
                amount_cny=round(float(amount), 2),
                last_claim_at=latest or row.last_claim_at,
                district=row.district or district,
                urgency=self.policy.urgency(row.type, int(workers)),
                updated_at=now,
            )
        )
        return connection.execute(sa.select(claim_cases).where(claim_cases.c.id == case_id)).one()

    def _append(
        self,
        connection: sa.Connection,
        row: Any,
        *,
        action: str,
        from_state: str | None,
        actor: str,
        now: dt.datetime,
        comment: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        connection.execute(
            claim_transitions.insert().values(
                case_id=row.id,
                action=action,
                from_state=from_state,
                to_state=row.state,
                actor=actor,
                comment=comment,
                details=details,
                created_at=now,
            )
        )
        connection.execute(
            claim_cases.update()
            .where(claim_cases.c.id == row.id)
            .values(transition_count=claim_cases.c.transition_count + 1)
        )
        payload = {"event": f"claim.{action}", "at": _iso(now), "claim_case": public_case(row)}
        if details and action in ("escalate", "dispatch", "close", "reopen", "merge", "split"):
            payload["details"] = {k: v for k, v in details.items() if k != "claim_ids"}
        connection.execute(
            outbox.insert().values(
                order_id=row.id, event=f"claim.{action}", payload=payload, created_at=now, next_attempt_at=now
            )
        )

    # --- reading ---------------------------------------------------------------------------

    @staticmethod
    def _visible(viewer: Viewer) -> list[Any]:
        if viewer.is_officer:
            return []
        return [claim_cases.c.enterprise_id == viewer.enterprise_id, claim_cases.c.enterprise_visible.is_(True)]

    def _row(self, connection: sa.Connection, case_id: str, viewer: Viewer) -> Any:
        row = connection.execute(
            sa.select(claim_cases).where(claim_cases.c.id == case_id, *self._visible(viewer))
        ).first()
        if row is None:  # another enterprise's case, or one not dispatched to it: "not found", no existence leak
            raise InputError("case_id", f"no claim case with id {case_id!r}", status_code=404)
        return row

    def _filter(self, query: CaseFilter, viewer: Viewer) -> list[Any]:
        where = self._visible(viewer)
        for column, value in (
            (claim_cases.c.enterprise_id, query.enterprise_id),
            (claim_cases.c.type, query.type),
            (claim_cases.c.district, query.district),
        ):
            if value is not None:
                where.append(column == value)
        if query.channel is not None:
            # the cases of the channel's claims (index ix_claims_channel_case), not a probe per case
            where.append(claim_cases.c.id.in_(sa.select(claims.c.case_id).where(claims.c.channel == query.channel)))
        return where

    def cases(self, query: CaseFilter, *, viewer: Viewer, now: dt.datetime | None = None) -> dict[str, Any]:
        """One page of cases, most urgent first (injuries, then mass cases, ...; oldest first within),
        each with its claims (officers) and claimant count; the total and counts per state."""
        now = now or utcnow()
        where = self._filter(query, viewer)
        states = [claim_cases.c.state.in_(query.states)] if query.states else []
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(claim_cases)
                .where(*where, *states)
                .order_by(claim_cases.c.urgency.desc(), claim_cases.c.opened_at, claim_cases.c.id)
                .limit(query.limit)
                .offset(query.offset)
            ).all()
            total = connection.execute(
                sa.select(sa.func.count()).select_from(claim_cases).where(*where, *states)
            ).scalar_one()
            counts = dict(
                connection.execute(
                    sa.select(claim_cases.c.state, sa.func.count()).where(*where).group_by(claim_cases.c.state)
                ).all()
            )
            members = self._claims_of(connection, [row.id for row in rows]) if viewer.is_officer else {}
        return {
            "items": [describe_case(row, viewer=viewer, now=now, claims=members.get(row.id)) for row in rows],
            "total": total,
            "limit": query.limit,
            "offset": query.offset,
            "counts": counts,
        }

    @staticmethod
    def _claims_of(
        connection: sa.Connection, case_ids: list[str], *, cap: int | None = CLAIMS_SHOWN
    ) -> dict[str, list]:
        if not case_ids:
            return {}
        rank = sa.func.row_number().over(partition_by=claims.c.case_id, order_by=(claims.c.created_at, claims.c.id))
        inner = sa.select(claims, rank.label("rank")).where(claims.c.case_id.in_(case_ids)).subquery()
        query = sa.select(inner).order_by(inner.c.case_id, inner.c.rank)
        if cap is not None:
            query = query.where(inner.c.rank <= cap)
        grouped: dict[str, list] = {}
        for row in connection.execute(query):
            grouped.setdefault(row.case_id, []).append(describe_claim(row))
        return grouped

    def case(self, case_id: str, *, viewer: Viewer, now: dt.datetime | None = None) -> dict[str, Any]:
        """One case with all its claims (officers) and its whole history, oldest first."""
        now = now or utcnow()
        with self.engine.connect() as connection:
            row = self._row(connection, case_id, viewer)
            members = self._claims_of(connection, [case_id], cap=None) if viewer.is_officer else {}
            history = connection.execute(
                sa.select(claim_transitions)
                .where(claim_transitions.c.case_id == case_id)
                .order_by(claim_transitions.c.id)
            ).all()
            ratings = self._feedback_of(connection, case_id) if viewer.is_officer else None
        described = describe_case(row, viewer=viewer, now=now, claims=members.get(case_id, []))
        described["history"] = [describe_transition(entry, viewer=viewer) for entry in history]
        if ratings is not None:
            described["feedback"] = ratings
        return described

    @staticmethod
    def _feedback_of(connection: sa.Connection, case_id: str) -> list[dict[str, Any]]:
        """The workers' ratings of the case's claims, comments included (officers only), oldest first."""
        rows = connection.execute(
            sa.select(report_feedback)
            .join(claims, claims.c.id == report_feedback.c.claim_id)
            .where(claims.c.case_id == case_id)
            .order_by(report_feedback.c.id)
        ).all()
        return [
            {
                "claim_id": row.claim_id,
                "round": row.round,
                "satisfied": row.satisfied,
                "resolved": row.resolved,
                "comment": row.comment,
                "created_at": _iso(row.created_at),
            }
            for row in rows
        ]

    # --- officers' actions -----------------------------------------------------------------

    @staticmethod
    def _officer_only(viewer: Viewer, what: str) -> None:
        if not viewer.is_officer:
            raise InputError("authorization", f"only union officers {what}", status_code=403)

    def transition(
        self, case_id: str, move: CaseMoveRequest, *, viewer: Viewer, now: dt.datetime | None = None
    ) -> dict[str, Any]:
        """dispatch (to a handler), handle (with notes), close (with an outcome); 409 from a wrong state."""
        self._officer_only(viewer, "dispatch, handle and close claim cases")
        sources, target = ACTIONS[move.action]
        now = now or utcnow()
        values: dict[str, Any] = {"state": target, "updated_at": now}
        if move.action == "dispatch":
            values |= {"handler": move.handler, "officer": viewer.actor, "dispatched_at": now}
            if move.handler == ENTERPRISE_HANDLER:
                values["enterprise_visible"] = True
        elif move.action == "handle":
            values["handled_at"] = now
        else:
            values |= {
                "closed_at": now,
                "outcome": move.outcome,
                "recovered_cny": move.recovered_cny,
                "injury_recognised": move.injury_recognised,
                "outcome_note": move.comment,
            }
        with self.engine.begin() as connection:
            before = self._row(connection, case_id, viewer)
            changed = connection.execute(
                claim_cases.update()
                .where(claim_cases.c.id == case_id, claim_cases.c.state.in_(sources))
                .values(**values)
            ).rowcount
            row = self._row(connection, case_id, viewer)
            if changed != 1:
                raise wrong_state(move.action, row.state)
            self._append(
                connection,
                row,
                action=move.action,
                from_state=before.state,
                actor=viewer.actor,
                now=now,
                comment=move.comment,
                details=_move_details(move, self.policy),
            )
        return describe_case(row, viewer=viewer, now=now)

    def merge(self, source_id: str, into_id: str, *, viewer: Viewer, now: dt.datetime | None = None) -> dict[str, Any]:
        """Move every claim of case `source_id` into case `into_id` (same enterprise, both open);
        the emptied case is closed as `merged`."""
        self._officer_only(viewer, "merge claim cases")
        if source_id == into_id:
            raise InputError("into", "a case cannot be merged into itself")
        now = now or utcnow()
        with self.engine.begin() as connection:
            source, target = self._row(connection, source_id, viewer), self._row(connection, into_id, viewer)
            if source.enterprise_id != target.enterprise_id:
                raise InputError("into", "only cases about the same enterprise can be merged", status_code=409)
            for row, field in ((source, "case_id"), (target, "into")):
                if row.state not in OPEN_STATES:
                    raise InputError(field, f"case {row.id} is `{row.state}`; only open cases merge", status_code=409)
            moved = connection.execute(
                claims.update().where(claims.c.case_id == source_id).values(case_id=into_id)
            ).rowcount
            connection.execute(
                claim_cases.update()
                .where(claim_cases.c.id == source_id)
                .values(
                    state="closed",
                    outcome="merged",
                    closed_at=now,
                    claimants=0,
                    workers=0,
                    amount_cny=0,
                    updated_at=now,
                )
            )
            emptied = connection.execute(sa.select(claim_cases).where(claim_cases.c.id == source_id)).one()
            self._append(
                connection,
                emptied,
                action="merge",
                from_state=source.state,
                actor=viewer.actor,
                now=now,
                details={"into": into_id, "claims": moved},
            )
            row = self._refresh(connection, into_id, now=now)
            self._append(
                connection,
                row,
                action="merge",
                from_state=row.state,
                actor=viewer.actor,
                now=now,
                details={"from": source_id, "claims": moved},
            )
        return self.case(into_id, viewer=viewer, now=now)

    def split(
        self, case_id: str, claim_ids: list[str], *, viewer: Viewer, now: dt.datetime | None = None
    ) -> dict[str, Any]:
        """Move the given claims of an open case into a new case of the same enterprise and type
        (accepted, due by its type); at least one claim stays behind."""
        self._officer_only(viewer, "split claim cases")
        now = now or utcnow()
        with self.engine.begin() as connection:
            source = self._row(connection, case_id, viewer)
            if source.state not in OPEN_STATES:
                raise InputError("case_id", f"the case is `{source.state}`; only open cases split", status_code=409)
            members = set(connection.execute(sa.select(claims.c.id).where(claims.c.case_id == case_id)).scalars())
            strangers = sorted(set(claim_ids) - members)
            if strangers:
                raise InputError("claim_ids", f"not claims of this case: {strangers[:10]}", status_code=422)
            if len(members) - len(claim_ids) < 1:
                raise InputError("claim_ids", "at least one claim must stay in the case; leave it whole instead")
            new_id = self._insert_case(
                connection, enterprise_id=source.enterprise_id, type=source.type, district=source.district, now=now
            )
            connection.execute(claims.update().where(claims.c.id.in_(claim_ids)).values(case_id=new_id))
            new_row = self._refresh(connection, new_id, now=now)
            self._append(
                connection,
                new_row,
                action="split",
                from_state=None,
                actor=viewer.actor,
                now=now,
                details={"from": case_id, "claims": len(claim_ids), "claim_ids": claim_ids},
            )
            row = self._refresh(connection, case_id, now=now)
            self._append(
                connection,
                row,
                action="split",
                from_state=row.state,
                actor=viewer.actor,
                now=now,
                details={"into": new_id, "claims": len(claim_ids), "claim_ids": claim_ids},
            )
        return {
            "case": self.case(case_id, viewer=viewer, now=now),
            "new_case": self.case(new_id, viewer=viewer, now=now),
        }

    def escalate_overdue(self, *, now: dt.datetime | None = None, actor: str = "system:escalation") -> list[dict]:
        """Raise every open, overdue case to the escalation level its delay has reached."""
        now = now or utcnow()
        top = len(self.policy.escalation)
        escalated = []
        with self.engine.begin() as connection:
            candidates = connection.execute(
                sa.select(claim_cases).where(
                    claim_cases.c.state.in_(OPEN_STATES),
                    claim_cases.c.due_at < now,
                    claim_cases.c.escalation_level < top,
                )
            ).all()
            for candidate in candidates:
                level = self.policy.level_at(due_at=candidate.due_at, now=now)
                if level <= candidate.escalation_level:
                    continue
                changed = connection.execute(
                    claim_cases.update()
                    .where(
                        claim_cases.c.id == candidate.id,
                        claim_cases.c.escalation_level == candidate.escalation_level,
                        claim_cases.c.state.in_(OPEN_STATES),
                    )
                    .values(escalation_level=level, updated_at=now)
                ).rowcount
                if changed != 1:  # escalated by another worker, or closed, meanwhile
                    continue
                row = connection.execute(sa.select(claim_cases).where(claim_cases.c.id == candidate.id)).one()
                target = self.policy.escalation[level - 1].describe()
                self._append(
                    connection,
                    row,
                    action="escalate",
                    from_state=row.state,
                    actor=actor,
                    now=now,
                    comment=f"overdue since {_iso(row.due_at)}; escalated to {target['name_en']}",
                    details={"level": target},
                )
                escalated.append({"case_id": row.id, "level": target})
        return escalated

    # --- for the risk model ----------------------------------------------------------------

    def risk_inputs(self, enterprise_ids: list[str], *, now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
        """The risk profile's claim fields for each given enterprise with claims in the last 12 months."""
        wanted = sorted({str(e) for e in enterprise_ids})
        if not wanted:
            return {}
        since = (now or utcnow()) - YEAR
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                rows = connection.execute(
                    sa.select(
                        claims.c.enterprise_id,
                        claims.c.type,
                        claims.c.case_id,
                        claims.c.workers,
                        claims.c.amount_cny,
                        claim_cases.c.workers.label("case_workers"),
                    )
                    .join(claim_cases, claim_cases.c.id == claims.c.case_id)
                    .where(claims.c.enterprise_id.in_(wanted[start : start + 500]), claims.c.created_at >= since)
                ).all()
                for row in rows:
                    _count_claim(found.setdefault(row.enterprise_id, _empty_inputs()), row, self.policy.mass_workers)
        return {key: _finish_inputs(value) for key, value in found.items()}

    def record_supervision(self, case_id: str, order_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                claim_cases.update().where(claim_cases.c.id == case_id).values(supervision_order_id=order_id)
            )


def _empty_inputs() -> dict[str, Any]:
    return {
        "claims": 0,
        "arrears_cases": set(),
        "arrears_workers": 0,
        "arrears_amount": 0.0,
        "injury_cases": set(),
        "mass": False,
    }


def _count_claim(acc: dict[str, Any], row: Any, mass_workers: int) -> None:
    acc["claims"] += 1
    if row.type == "wage_arrears":
        acc["arrears_cases"].add(row.case_id)
        acc["arrears_workers"] += row.workers
        acc["arrears_amount"] += row.amount_cny or 0.0
    elif row.type == "work_injury":
        acc["injury_cases"].add(row.case_id)
    acc["mass"] = acc["mass"] or row.case_workers >= mass_workers


def _finish_inputs(acc: dict[str, Any]) -> dict[str, Any]:
    return {
        "complaints_12m": acc["claims"],
        "wage_arrears_cases_12m": len(acc["arrears_cases"]),
        "wage_arrears_workers_12m": acc["arrears_workers"],
        "wage_arrears_amount_12m": round(acc["arrears_amount"], 2),
        "work_injury_cases_12m": len(acc["injury_cases"]),
        "collective_petition_12m": acc["mass"],
    }


def _move_details(move: CaseMoveRequest, policy: ClaimsPolicy) -> dict[str, Any] | None:
    if move.action == "dispatch":
        return {"handler": policy.handlers[move.handler].describe()}
    if move.action == "close":
        return {
            "outcome": move.outcome,
            "recovered_cny": move.recovered_cny,
            "injury_recognised": move.injury_recognised,
        }
    return None


def describe_claim(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "channel": row.channel,
        "type": row.type,
        "workers": row.workers,
        "amount_cny": row.amount_cny,
        "district": row.district,
        "description": row.description,
        "claimant": row.claimant,  # a pseudonym: repeat claimants can be linked, never named
        "received_by": row.received_by,
        "created_at": _iso(row.created_at),
    }


def describe_case(
    row: Any, *, viewer: Viewer, now: dt.datetime, claims: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    policy = load_policy()
    handler = policy.handlers.get(row.handler) if row.handler else None
    described = {
        "id": row.id,
        "enterprise_id": row.enterprise_id,
        "type": row.type,
        "type_zh": policy.types[row.type].name_zh,
        "district": row.district,
        "state": row.state,
        "handler": handler.describe() if handler else None,
        "claimants": row.claimants,
        "workers": row.workers,
        "amount_cny": row.amount_cny,
        "mass": row.workers >= policy.mass_workers,
        "urgency": row.urgency,
        "opened_at": _iso(row.opened_at),
        "last_claim_at": _iso(row.last_claim_at),
        "due_at": _iso(row.due_at),
        "overdue": row.state in OPEN_STATES and row.due_at < now,
        "escalation_level": row.escalation_level,
        "dispatched_at": _iso(row.dispatched_at),
        "handled_at": _iso(row.handled_at),
        "closed_at": _iso(row.closed_at),
        "outcome": None
        if row.outcome is None
        else {
            "id": row.outcome,
            "recovered_cny": row.recovered_cny,
            "injury_recognised": row.injury_recognised,
            "note": row.outcome_note,
        },
        "reopen_count": row.reopen_count,
        "transition_count": row.transition_count,
    }
    if viewer.is_officer:
        described["supervision_order_id"] = row.supervision_order_id
        if claims is not None:
            described["claims"] = claims
    return described


def describe_transition(row: Any, *, viewer: Viewer) -> dict[str, Any]:
    details = row.details
    if not viewer.is_officer and details:  # an enterprise never learns which claims moved
        details = {k: v for k, v in details.items() if k not in ("claim_id", "claim_ids", "channel")}
    return {
        "id": row.id,
        "action": row.action,
        "from": row.from_state,
        "to": row.to_state,
        # an enterprise never learns who filed, informed or acted: no key, no informant's or officer's name
        "actor": row.actor if viewer.is_officer else None,
        "comment": row.comment,
        "details": details,
        "created_at": _iso(row.created_at),
    }
