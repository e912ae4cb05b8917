"""Reading kept scores: an enterprise's latest tier and history, the unions that cover it, and the
officers assigned to enterprises (挂点) with what changed for each."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from runtime.errors import InputError
from serving.db import iso, utcnow
from serving.enterprises.schema import TIERS, assignments, latest, scores
from serving.orders.schema import orders
from serving.orders.states import UNRECTIFIED_STATES
from serving.unions.schema import coverage, unions

MAX_HISTORY = 200  # newest first; the tier-over-time line of a page
MAX_ASSIGNED = 1_000
CHANGED_WITHIN = dt.timedelta(days=7)


def describe_score(row: Any) -> dict[str, Any]:
    return {
        "tier": row.tier,
        "model_tier": row.model_tier,
        "probabilities": {str(tier): getattr(row, f"p_tier_{tier}") for tier in TIERS},
        "reasons": [name for name in row.reasons.split(";") if name],
        "rules_fired": [name for name in row.rules_fired.split(";") if name],
        "model": {"name": row.model_name, "version": row.model_version},
        "source": row.source,
        "profile_fingerprint": row.profile_fingerprint,
        "scored_at": iso(row.scored_at),
    }


class EnterpriseStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def enterprise(self, enterprise_id: str, *, officer: bool) -> dict[str, Any]:
        """Latest score and history (newest first); officers also see the assigned officers."""
        with self.engine.connect() as connection:
            history = connection.execute(
                sa.select(scores)
                .where(scores.c.enterprise_id == enterprise_id)
                .order_by(scores.c.scored_at.desc(), scores.c.id.desc())
                .limit(MAX_HISTORY)
            ).all()
            if not history:
                raise InputError("enterprise_id", f"no score kept for enterprise {enterprise_id!r}", status_code=404)
            kept = connection.execute(sa.select(latest).where(latest.c.enterprise_id == enterprise_id)).first()
            total = connection.execute(
                sa.select(sa.func.count()).select_from(scores).where(scores.c.enterprise_id == enterprise_id)
            ).scalar()
            covering = connection.execute(
                sa.select(unions.c.union_id, unions.c.name, unions.c.grade, unions.c.layer)
                .join(coverage, coverage.c.union_id == unions.c.union_id)
                .where(coverage.c.enterprise_id == enterprise_id)
                .order_by(unions.c.union_id)
            ).all()
            officers = (
                connection.execute(sa.select(assignments).where(assignments.c.enterprise_id == enterprise_id)).all()
                if officer
                else []
            )
        # the latest tier is the newest score's, unless a late batch part logged an older one last
        newest = max(history, key=lambda row: (row.scored_at, row.id))
        answer = {
            "enterprise_id": enterprise_id,
            "latest": describe_score(newest),
            "previous_tier": kept.previous_tier if kept else None,
            "high_since": iso(kept.high_since) if kept else None,
            "score_count": total,
            "history": [describe_score(row) for row in history],
            "unions": [
                {"union_id": row.union_id, "name": row.name, "grade": row.grade, "layer": row.layer} for row in covering
            ],
        }
        if officer:
            answer["officers"] = [
                {"key_id": row.officer_key_id, "holder": row.officer_holder, "assigned_at": iso(row.assigned_at)}
                for row in officers
            ]
        return answer

    def assign(self, enterprise_id: str, *, key_id: str, holder: str, by: str) -> dict[str, Any]:
        """Assign an officer to an enterprise (idempotent: an existing assignment is kept as it was)."""
        with self.engine.begin() as connection:
            exists = connection.execute(
                sa.select(assignments).where(
                    assignments.c.officer_key_id == key_id, assignments.c.enterprise_id == enterprise_id
                )
            ).first()
            if exists is None:
                connection.execute(
                    assignments.insert().values(
                        officer_key_id=key_id,
                        enterprise_id=enterprise_id,
                        officer_holder=holder,
                        assigned_by=by,
                        assigned_at=utcnow(),
                    )
                )
        return {"enterprise_id": enterprise_id, "key_id": key_id, "holder": holder, "assigned": exists is None}

    def unassign(self, enterprise_id: str, *, key_id: str) -> bool:
        with self.engine.begin() as connection:
            result = connection.execute(
                assignments.delete().where(
                    assignments.c.officer_key_id == key_id, assignments.c.enterprise_id == enterprise_id
                )
            )
        return result.rowcount > 0

    def assigned_to(self, key_id: str, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """An officer's enterprises, those that changed most recently first: the latest tier against the one
        before, when it was scored, and the open orders and supervision cases."""
        now = now or utcnow()
        open_orders = (
            sa.select(
                orders.c.enterprise_id,
                sa.func.count().label("open_orders"),
                sa.func.sum(sa.case((orders.c.due_at < now, 1), else_=0)).label("overdue"),
            )
            .where(orders.c.state.in_(UNRECTIFIED_STATES))
            .group_by(orders.c.enterprise_id)
            .subquery()
        )
        query = (
            sa.select(
                assignments.c.enterprise_id,
                assignments.c.assigned_at,
                latest.c.tier,
                latest.c.previous_tier,
                latest.c.scored_at,
                latest.c.high_since,
                open_orders.c.open_orders,
                open_orders.c.overdue,
            )
            .select_from(
                assignments.outerjoin(latest, latest.c.enterprise_id == assignments.c.enterprise_id).outerjoin(
                    open_orders, open_orders.c.enterprise_id == assignments.c.enterprise_id
                )
            )
            .where(assignments.c.officer_key_id == key_id)
            .order_by(latest.c.scored_at.desc().nulls_last(), assignments.c.enterprise_id)
            .limit(MAX_ASSIGNED)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            {
                "enterprise_id": row.enterprise_id,
                "assigned_at": iso(row.assigned_at),
                "tier": row.tier,
                "previous_tier": row.previous_tier,
                "scored_at": iso(row.scored_at),
                "high_since": iso(row.high_since),
                "changed": _change(row, now),
                "open_orders": int(row.open_orders or 0),
                "overdue_orders": int(row.overdue or 0),
            }
            for row in rows
        ]


def _change(row: Any, now: dt.datetime) -> str:
    """What changed for an assigned enterprise, in one word: rose, fell, same, new or unscored."""
    if row.tier is None:
        return "unscored"
    if row.previous_tier is None:
        return "new"
    if row.scored_at is not None and now - row.scored_at > CHANGED_WITHIN:
        return "same"
    return "rose" if row.tier > row.previous_tier else "fell" if row.tier < row.previous_tier else "same"
