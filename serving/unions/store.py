"""The union store: unions and the enterprises they cover, grading runs and grade history, on the
review store's database (SQLAlchemy Core; SQLite or PostgreSQL; migration 0011).

An import is one transaction: every row checked first (serving/unions/rows.py), then the unions
upserted and their coverage replaced, so a file is in whole or not at all. A grading run reads every
union's enterprise aggregates in one SQL statement (the latest tiers in `enterprise_latest`), grades
them all at once (serving/unions/grading.py) and writes the new grades, a history row for each union
whose grade or layer changed, and the run, in one transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from runtime.errors import InputError
from serving.db import iso, utcnow
from serving.enterprises.schema import latest
from serving.orders.schema import orders
from serving.orders.states import UNRECTIFIED_STATES
from serving.unions.grading import HIGH_TIER, Grading, load_grading
from serving.unions.rows import UnionRow
from serving.unions.schema import FOCUS_GROUPS, coverage, grade_history, grade_runs, unions

ID_CHUNK = 500  # ids per IN (...) list: far below every driver's parameter limit
WRITE_CHUNK = 10_000
MAX_LISTED_ENTERPRISES = 1_000  # a union's page lists its riskiest enterprises first
MAX_LISTED_UNIONS = 500
GROUP_COLUMNS = tuple(f"{group}_members" for group in FOCUS_GROUPS)


@dataclass(frozen=True)
class UnionFilter:
    grade: int | None = None
    layer: str | None = None
    union_type: str | None = None
    district: str | None = None
    limit: int = 100
    offset: int = 0


def _chunks(items: list[Any], size: int = ID_CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert(connection: sa.Connection):
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert


def describe_union(row: Any) -> dict[str, Any]:
    return {
        "union_id": row.union_id,
        "name": row.name,
        "union_type": row.union_type,
        "district": row.district,
        "parent_id": row.parent_id,
        "members": row.members,
        **{name: getattr(row, name) for name in GROUP_COLUMNS},
        "grade": row.grade,
        "layer": row.layer,
        "points": row.points,
        "graded_at": iso(row.graded_at),
        "updated_at": iso(row.updated_at),
    }


class UnionStore:
    def __init__(self, engine: sa.Engine, *, grading: Grading | None = None):
        self.engine = engine
        self.grading = grading or load_grading()

    # --- writing unions -------------------------------------------------------------------

    def import_rows(self, rows: list[UnionRow], *, now: dt.datetime | None = None) -> dict[str, int]:
        """Upsert `rows` (checked ones) and replace each one's coverage, in one transaction."""
        now = now or utcnow()
        with self.engine.begin() as connection:
            ids = [row.union_id for row in rows]
            existing = set()
            for chunk in _chunks(ids):
                existing.update(
                    connection.execute(sa.select(unions.c.union_id).where(unions.c.union_id.in_(chunk))).scalars()
                )
            values = [{**row.columns(), "created_at": now, "updated_at": now} for row in rows]
            insert = _insert(connection)(unions)
            kept = {name: insert.excluded[name] for name in rows[0].columns() if name != "union_id"} if rows else {}
            statement = insert.on_conflict_do_update(
                index_elements=[unions.c.union_id], set_={**kept, "updated_at": insert.excluded.updated_at}
            )
            for chunk in _chunks(values, WRITE_CHUNK):
                connection.execute(statement, chunk)
            self._replace_coverage(connection, rows)
        return {
            "unions": len(rows),
            "created": len(rows) - len(existing),
            "updated": len(existing),
            "enterprises": sum(len(row.enterprise_ids) for row in rows),
        }

    def _replace_coverage(self, connection: sa.Connection, rows: list[UnionRow]) -> None:
        for chunk in _chunks([row.union_id for row in rows]):
            connection.execute(coverage.delete().where(coverage.c.union_id.in_(chunk)))
        pairs = [{"union_id": row.union_id, "enterprise_id": e} for row in rows for e in row.enterprise_ids]
        for chunk in _chunks(pairs, WRITE_CHUNK):
            connection.execute(coverage.insert(), chunk)

    def create(self, row: UnionRow) -> dict[str, Any]:
        now = utcnow()
        with self.engine.begin() as connection:
            if connection.execute(sa.select(unions.c.union_id).where(unions.c.union_id == row.union_id)).first():
                raise InputError("union_id", f"a union with id {row.union_id!r} exists; PATCH it", status_code=409)
            connection.execute(unions.insert().values(**row.columns(), created_at=now, updated_at=now))
            self._replace_coverage(connection, [row])
        return self.union(row.union_id)

    def update(self, union_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change the given fields (a checked partial row); enterprise_ids replaces the coverage."""
        changes = dict(changes)
        enterprise_ids = changes.pop("enterprise_ids", None)
        if changes.get("union_id", union_id) != union_id:
            raise InputError("union_id", "a union's id cannot change; create a new union instead")
        changes.pop("union_id", None)
        with self.engine.begin() as connection:
            row = self._row(connection, union_id, lock=True)
            members = changes.get("members", row.members)
            for name in GROUP_COLUMNS:
                if changes.get(name, getattr(row, name)) > members:
                    raise InputError(name, f"is more than the union's members ({members})")
            if changes.get("parent_id") == union_id:
                raise InputError("parent_id", "a union cannot be its own parent")
            connection.execute(
                unions.update().where(unions.c.union_id == union_id).values(**changes, updated_at=utcnow())
            )
            if enterprise_ids is not None:
                covered = UnionRow(union_id, "", "", "", None, 0, enterprise_ids=enterprise_ids)
                self._replace_coverage(connection, [covered])
        return self.union(union_id)

    def _row(self, connection: sa.Connection, union_id: str, *, lock: bool = False) -> Any:
        query = sa.select(unions).where(unions.c.union_id == union_id)
        row = connection.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise InputError("union_id", f"no union with id {union_id!r}", status_code=404)
        return row

    # --- grading --------------------------------------------------------------------------

    def aggregates(self, connection: sa.Connection) -> pd.DataFrame:
        """One row per union: type, members, and its enterprises' count, scored count, highest tier and
        count at tier >= 4 (from each enterprise's latest score)."""
        high = sa.case((latest.c.tier >= HIGH_TIER, 1), else_=0)
        per_union = (
            sa.select(
                coverage.c.union_id,
                sa.func.count().label("enterprises"),
                sa.func.count(latest.c.tier).label("scored"),
                sa.func.max(latest.c.tier).label("highest_tier"),
                sa.func.coalesce(sa.func.sum(high), 0).label("high_tier"),
            )
            .select_from(coverage.outerjoin(latest, latest.c.enterprise_id == coverage.c.enterprise_id))
            .group_by(coverage.c.union_id)
            .subquery()
        )
        query = sa.select(
            unions.c.union_id,
            unions.c.union_type,
            unions.c.members,
            *[unions.c[name] for name in GROUP_COLUMNS],
            unions.c.grade.label("previous_grade"),
            unions.c.layer.label("previous_layer"),
            sa.func.coalesce(per_union.c.enterprises, 0).label("enterprises"),
            sa.func.coalesce(per_union.c.scored, 0).label("scored"),
            per_union.c.highest_tier,
            sa.func.coalesce(per_union.c.high_tier, 0).label("high_tier"),
        ).select_from(unions.outerjoin(per_union, per_union.c.union_id == unions.c.union_id))
        frame = pd.DataFrame(connection.execute(query).mappings().all())
        if frame.empty:
            return frame
        frame["highest_tier"] = pd.to_numeric(frame["highest_tier"], errors="coerce").astype(float)
        return frame

    def grade_all(self, *, actor: str, source: str = "api") -> dict[str, Any]:
        """Regrade every union from its enterprises' latest tiers and record the run."""
        started = utcnow()
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # one run at a time; a second waits, then regrades
                connection.execute(sa.text("LOCK TABLE union_grade_runs IN EXCLUSIVE MODE"))
            frame = self.aggregates(connection)
            graded = self.grading.grade(frame) if len(frame) else pd.DataFrame()
            if len(frame):
                graded["previous_grade"] = frame["previous_grade"].to_numpy()
                graded["previous_layer"] = frame["previous_layer"].to_numpy()
            return self._write_run(connection, graded, actor=actor, source=source, started=started)

    def apply_grades(self, graded: pd.DataFrame, *, actor: str, source: str) -> dict[str, Any]:
        """Write grades computed elsewhere (`ankang batch unions`): unknown union ids are refused."""
        started = utcnow()
        with self.engine.begin() as connection:
            previous = pd.DataFrame(
                connection.execute(sa.select(unions.c.union_id, unions.c.grade, unions.c.layer)).mappings().all(),
                columns=["union_id", "grade", "layer"],
            ).set_index("union_id")
            unknown = sorted(set(graded["union_id"]) - set(previous.index))
            if unknown:
                message = f"{len(unknown)} graded union(s) are not in the store, e.g. {unknown[0]!r}"
                raise InputError("union_id", message)
            graded = graded.copy()
            graded["previous_grade"] = previous["grade"].reindex(graded["union_id"]).to_numpy()
            graded["previous_layer"] = previous["layer"].reindex(graded["union_id"]).to_numpy()
            return self._write_run(connection, graded, actor=actor, source=source, started=started)

    def _write_run(
        self, connection: sa.Connection, graded: pd.DataFrame, *, actor: str, source: str, started: dt.datetime
    ) -> dict[str, Any]:
        run_id, now = uuid.uuid4().hex, utcnow()
        changed = (
            graded[
                graded["previous_grade"].isna()
                | (graded["previous_grade"] != graded["grade"])
                | (graded["previous_layer"] != graded["layer"])
            ]
            if len(graded)
            else graded
        )
        connection.execute(
            grade_runs.insert().values(
                id=run_id,
                actor=actor,
                source=source,
                grading_sha256=self.grading.sha256,
                started_at=started,
                finished_at=now,
                unions_graded=len(graded),
                grades_changed=len(changed),
            )
        )
        updates = [
            {"b_id": u, "grade": g, "layer": layer, "points": p, "factors": f, "graded_at": now}
            for u, g, layer, p, f in zip(
                graded.get("union_id", []),
                map(int, graded.get("grade", [])),
                graded.get("layer", []),
                map(float, graded.get("points", [])),
                graded.get("factors", []),
            )
        ]
        statement = unions.update().where(unions.c.union_id == sa.bindparam("b_id"))
        for chunk in _chunks(updates, WRITE_CHUNK):
            connection.execute(statement, chunk)
        history = [
            {
                "run_id": run_id,
                "union_id": row.union_id,
                "grade": int(row.grade),
                "previous_grade": None if pd.isna(row.previous_grade) else int(row.previous_grade),
                "layer": row.layer,
                "points": float(row.points),
                "factors": row.factors,
                "graded_at": now,
            }
            for row in changed.itertuples(index=False)
        ]
        for chunk in _chunks(history, WRITE_CHUNK):
            connection.execute(grade_history.insert(), chunk)
        return {
            "run_id": run_id,
            "source": source,
            "actor": actor,
            "grading_sha256": self.grading.sha256,
            "started_at": iso(started),
            "finished_at": iso(now),
            "unions_graded": len(graded),
            "grades_changed": len(changed),
            "grades": {str(g): int((graded["grade"] == g).sum()) for g in range(1, 6)} if len(graded) else {},
        }

    # --- reading --------------------------------------------------------------------------

    def list(self, where: UnionFilter) -> dict[str, Any]:
        conditions = []
        if where.grade is not None:
            conditions.append(unions.c.grade == where.grade)
        if where.layer:
            conditions.append(unions.c.layer == where.layer)
        if where.union_type:
            conditions.append(unions.c.union_type == where.union_type)
        if where.district:
            conditions.append(unions.c.district == where.district)
        with self.engine.connect() as connection:
            total = connection.execute(sa.select(sa.func.count()).select_from(unions).where(*conditions)).scalar()
            rows = connection.execute(
                sa.select(unions)
                .where(*conditions)
                .order_by(unions.c.grade.desc().nulls_last(), unions.c.points.desc().nulls_last(), unions.c.union_id)
                .limit(where.limit)
                .offset(where.offset)
            ).all()
        return {"total": total, "unions": [describe_union(row) for row in rows]}

    def distribution(self) -> dict[str, Any]:
        """Union counts by grade, per union type and per layer (the /unions chart)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(unions.c.union_type, unions.c.layer, unions.c.grade, sa.func.count().label("n")).group_by(
                    unions.c.union_type, unions.c.layer, unions.c.grade
                )
            ).all()
        by_type: dict[str, dict[str, int]] = {}
        by_layer: dict[str, dict[str, int]] = {}
        for row in rows:
            grade = str(row.grade) if row.grade is not None else "ungraded"
            by_type.setdefault(row.union_type, {}).setdefault(grade, 0)
            by_type[row.union_type][grade] += row.n
            layer = row.layer or "ungraded"
            by_layer.setdefault(layer, {}).setdefault(grade, 0)
            by_layer[layer][grade] += row.n
        return {"by_type": by_type, "by_layer": by_layer}

    def union(self, union_id: str) -> dict[str, Any]:
        """A union with its grade, layer and factors, grade history, enterprises (riskiest first, with their
        latest tiers) and those enterprises' open orders and supervision cases."""
        with self.engine.connect() as connection:
            row = self._row(connection, union_id)
            history = connection.execute(
                sa.select(grade_history)
                .where(grade_history.c.union_id == union_id)
                .order_by(grade_history.c.graded_at.desc(), grade_history.c.id.desc())
                .limit(200)
            ).all()
            covered = (
                sa.select(
                    coverage.c.enterprise_id,
                    latest.c.tier,
                    latest.c.previous_tier,
                    latest.c.scored_at,
                    latest.c.high_since,
                )
                .select_from(coverage.outerjoin(latest, latest.c.enterprise_id == coverage.c.enterprise_id))
                .where(coverage.c.union_id == union_id)
            )
            count = connection.execute(sa.select(sa.func.count()).select_from(covered.subquery())).scalar()
            enterprises = connection.execute(
                covered.order_by(latest.c.tier.desc().nulls_last(), coverage.c.enterprise_id).limit(
                    MAX_LISTED_ENTERPRISES
                )
            ).all()
            open_orders = connection.execute(
                sa.select(orders)
                .join(coverage, coverage.c.enterprise_id == orders.c.enterprise_id)
                .where(coverage.c.union_id == union_id, orders.c.state.in_(UNRECTIFIED_STATES))
                .order_by(orders.c.due_at)
                .limit(MAX_LISTED_ENTERPRISES)
            ).all()
        now = utcnow()
        return {
            **describe_union(row),
            "factors": row.factors or [],
            "history": [
                {
                    "run_id": item.run_id,
                    "grade": item.grade,
                    "previous_grade": item.previous_grade,
                    "layer": item.layer,
                    "points": item.points,
                    "graded_at": iso(item.graded_at),
                }
                for item in history
            ],
            "enterprise_count": count,
            "enterprises": [
                {
                    "enterprise_id": item.enterprise_id,
                    "tier": item.tier,
                    "previous_tier": item.previous_tier,
                    "scored_at": iso(item.scored_at),
                    "high_since": iso(item.high_since),
                }
                for item in enterprises
            ],
            "open_orders": [
                {
                    "id": order.id,
                    "kind": order.kind,
                    "enterprise_id": order.enterprise_id,
                    "state": order.state,
                    "severity": order.severity,
                    "risk_tier": order.risk_tier,
                    "due_at": iso(order.due_at),
                    "overdue": order.due_at < now,
                }
                for order in open_orders
            ],
        }

    def unions_of(self, enterprise_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(unions)
                .join(coverage, coverage.c.union_id == unions.c.union_id)
                .where(coverage.c.enterprise_id == enterprise_id)
                .order_by(unions.c.union_id)
            ).all()
        return [describe_union(row) for row in rows]
