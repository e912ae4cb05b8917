"""The review store: cases (photo + assessment + metadata) and their append-only decision log.

SQLAlchemy Core over SQLite (WAL mode) by default, or PostgreSQL through `ANKANG_DATABASE_URL`.
Each write is one transaction; photos go to the content-addressed `PhotoStore` first (atomic
rename), so a case row never points at a missing or half-written file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from PIL import Image

from runtime.errors import InputError
from runtime.taxonomy import load_taxonomy
from serving.assessment import PhotoAssessment
from serving.db import create_engine, iso, migrate, utcnow
from serving.images import PhotoFacts
from serving.review.decisions import OPEN_STATUSES, STATUS_AFTER, DecisionRequest, Reviewer, resolved_hazards
from serving.review.grouping import (
    BAND_WIDTHS,
    DHASH_THRESHOLD,
    dhash64,
    hamming_to_many,
    hash_bands,
    parse_hashes,
    to_hex,
)
from serving.review.photos import PhotoStore
from serving.review.queue import QueueFilter, queue_page
from serving.review.schema import case_flags, cases, decisions
from serving.settings import ServingSettings

GROUP_WINDOW = dt.timedelta(days=30)  # a scene reported again after a month starts a new group


METADATA_COLUMNS = ("site_id", "sector", "channel", "note", "reporter")  # reporter: a pseudonym only
# The recent cases sharing a band with a hash: one indexed lookup per band (ix_review_cases_band*),
# built once with the bands and the window's start as parameters (every intake runs it).
SAME_BAND_RECENT = sa.union(
    *(
        sa.select(cases.c.dhash, cases.c.group_id).where(
            cases.c[f"dhash_band{index}"] == sa.bindparam(f"band{index}"), cases.c.created_at >= sa.bindparam("since")
        )
        for index in range(len(BAND_WIDTHS))
    )
)


def _cam_columns(cam: np.ndarray | None) -> dict[str, Any]:
    if cam is None:
        return {"cam": None, "cam_shape": None}
    return {"cam": np.asarray(cam, dtype="<f2").tobytes(), "cam_shape": list(cam.shape)}


def _assessment_columns(assessment: PhotoAssessment) -> dict[str, Any]:
    return {
        "status": assessment.status,
        "triage": assessment.triage,
        "severity_rank": assessment.severity_rank,
        "top_probability": assessment.top_probability,
        "model_name": assessment.model_name,
        "model_version": assessment.model_version,
        "labels": list(assessment.hazards),
        "probabilities": dict(assessment.hazards),
        "thresholds": dict(assessment.thresholds),
        "flagged": assessment.flagged_types,
        **_cam_columns(assessment.cam),
        "detections": [item.to_dict() for item in assessment.detections],
    }


def _metadata_columns(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: metadata[key] for key in METADATA_COLUMNS if metadata.get(key) is not None}


class ReviewStore:
    def __init__(
        self,
        *,
        database_url: str,
        photo_dir: str | Path,
        keep_gps: bool = False,
        group_threshold: int = DHASH_THRESHOLD,
        run_migrations: bool = True,
    ):
        if not 0 <= group_threshold < len(BAND_WIDTHS):
            raise ValueError(
                f"group_threshold must be between 0 and {len(BAND_WIDTHS) - 1} bits "
                f"(the hash index has {len(BAND_WIDTHS)} bands), got {group_threshold}"
            )
        self.engine = create_engine(database_url)
        self.photos = PhotoStore(photo_dir, keep_gps=keep_gps)
        self.group_threshold = group_threshold
        if run_migrations:
            migrate(self.engine)

    @classmethod
    def from_settings(cls, settings: ServingSettings) -> ReviewStore:
        return cls(
            database_url=settings.resolved_database_url,
            photo_dir=settings.resolved_photo_store,
            keep_gps=settings.keep_gps,
        )

    @staticmethod
    def photos_of(photo_dir: str | Path, *, keep_gps: bool = False) -> PhotoStore:
        return PhotoStore(photo_dir, keep_gps=keep_gps)

    def close(self) -> None:
        self.engine.dispose()

    def _group_for(self, connection: sa.Connection, dhash: int, created_at: dt.datetime) -> str | None:
        """The group of the nearest recent photo within the threshold. Only photos sharing a hash band
        can be that close, so one indexed lookup per band (ix_review_cases_band*) finds them all."""
        bands = {f"band{index}": band for index, band in enumerate(hash_bands(dhash))}
        rows = connection.execute(SAME_BAND_RECENT, {**bands, "since": created_at - GROUP_WINDOW}).all()
        if not rows:
            return None
        distances = hamming_to_many(dhash, parse_hashes([row.dhash for row in rows]))
        nearest = int(np.argmin(distances))
        return rows[nearest].group_id if distances[nearest] <= self.group_threshold else None

    def record_assessment(
        self,
        *,
        photo_id: str,
        data: bytes,
        image: Image.Image | PhotoFacts,
        assessment: PhotoAssessment,
        metadata: dict[str, Any] | None = None,
        created_at: dt.datetime | None = None,
        also: Callable[[sa.Connection], Any] | None = None,
    ) -> dict[str, Any]:
        """Store the photo and one case row for the model's assessment, as the assessment states it.
        `image` is the decoded photo or, from the service, only its facts (the full image is gone by then).

        Atomic: the case, its flags and whatever `also` writes (the intake's receipt) commit in one
        transaction. The photo file is written first (atomic rename, content-addressed); if the
        transaction fails, the file is removed again unless another case or order refers to it, so a
        failed intake leaves neither a case nor an unreferenced photo. Returns `also`'s result as "also"."""
        image = image if isinstance(image, PhotoFacts) else PhotoFacts(image.width, image.height, dhash64(image))
        digest, written = self.photos.put_new(data)
        dhash = image.dhash
        row = {
            "photo_id": photo_id,
            "photo_sha256": digest,
            "created_at": created_at or utcnow(),
            **_assessment_columns(assessment),
            **_metadata_columns(metadata or {}),
            "width": image.width,
            "height": image.height,
            "dhash": to_hex(dhash),
            **{f"dhash_band{index}": band for index, band in enumerate(hash_bands(dhash))},
        }
        try:
            with self.engine.begin() as connection:
                row["group_id"] = self._group_for(connection, dhash, row["created_at"]) or photo_id
                connection.execute(cases.insert(), row)  # values bound, not built into the statement
                if assessment.flagged:
                    connection.execute(
                        case_flags.insert(), [{"photo_id": photo_id, "hazard": h} for h in assessment.flagged_types]
                    )
                extra = also(connection) if also is not None else None
        except BaseException:
            if written:
                self._discard_unreferenced(digest)
            raise
        return {"photo_id": photo_id, "group_id": row["group_id"], "photo_sha256": digest, "also": extra}

    def _discard_unreferenced(self, digest: str) -> None:
        """Remove a photo file this request wrote if no case or order refers to it (best effort: when
        the database is down the reference cannot be checked, and the file is kept)."""
        try:
            with self.engine.connect() as connection:
                referenced = connection.execute(
                    sa.select(sa.literal(1)).where(
                        sa.or_(
                            sa.exists().where(cases.c.photo_sha256 == digest),
                            sa.exists(sa.text("1 FROM rectification_orders WHERE proof_sha256 = :digest")),
                        )
                    ),
                    {"digest": digest},
                ).first()
        except sa.exc.SQLAlchemyError:
            return
        if referenced is None:
            self.photos.discard(digest)

    def _case_row(self, connection: sa.Connection, photo_id: str) -> sa.Row:
        row = connection.execute(sa.select(cases).where(cases.c.photo_id == photo_id)).first()
        if row is None:
            raise InputError("photo_id", f"no case with photo_id {photo_id!r}", status_code=404)
        return row

    def case(self, photo_id: str) -> dict[str, Any]:
        """One case with its group and the full decision history (oldest first)."""
        with self.engine.connect() as connection:
            row = self._case_row(connection, photo_id)
            history = connection.execute(
                sa.select(decisions).where(decisions.c.photo_id == photo_id).order_by(decisions.c.id)
            ).all()
            group = connection.execute(
                sa.select(cases.c.photo_id, cases.c.status)
                .where(cases.c.group_id == row.group_id)
                .order_by(cases.c.created_at)
            ).all()
        return {
            **describe_case(row),
            "group": [dict(member._mapping) for member in group],
            "history": [describe_decision(entry) for entry in history],
        }

    def cam(self, photo_id: str) -> tuple[list[str], np.ndarray | None, str]:
        """Labels, the stored class activation maps (K×h×w float32) and the photo's sha256."""
        with self.engine.connect() as connection:
            row = self._case_row(connection, photo_id)
        if row.cam is None:
            return list(row.labels), None, row.photo_sha256
        grid = np.frombuffer(row.cam, dtype="<f2").astype(np.float32).reshape(row.cam_shape)
        return list(row.labels), grid, row.photo_sha256

    def photo_digest(self, photo_id: str) -> str:
        with self.engine.connect() as connection:
            return self._case_row(connection, photo_id).photo_sha256

    def decide(self, photo_id: str, decision: DecisionRequest, *, reviewer: Reviewer) -> dict[str, Any]:
        """Append the decision (and, with apply_to_group, to the group's undecided cases) in one transaction."""
        now = utcnow()
        with self.engine.begin() as connection:
            row = self._case_row(connection, photo_id)
            hazards = list(resolved_hazards(decision, list(row.flagged)))
            targets = [photo_id]
            if decision.apply_to_group:
                targets += (
                    connection.execute(
                        sa.select(cases.c.photo_id).where(
                            cases.c.group_id == row.group_id,
                            cases.c.photo_id != photo_id,
                            cases.c.status.in_(OPEN_STATUSES),
                        )
                    )
                    .scalars()
                    .all()
                )
            connection.execute(
                decisions.insert(),
                [
                    {
                        "photo_id": target,
                        "decision": decision.decision,
                        "hazards": hazards,
                        "comment": decision.comment,
                        "reviewer_key_id": reviewer.key_id,
                        "reviewer_holder": reviewer.holder,
                        "created_at": now,
                        "via_photo_id": None if target == photo_id else photo_id,
                    }
                    for target in targets
                ],
            )
            connection.execute(
                cases.update()
                .where(cases.c.photo_id.in_(targets))
                .values(
                    status=STATUS_AFTER[decision.decision], decided_at=now, decision_count=cases.c.decision_count + 1
                )
            )
        return {
            "photo_id": photo_id,
            "decision": decision.decision,
            "hazards": hazards,
            "status": STATUS_AFTER[decision.decision],
            "applied_to": targets,
            "reviewer": reviewer.to_dict(),
            "decided_at": iso(now),
        }

    def queue(self, query: QueueFilter) -> dict[str, Any]:
        with self.engine.connect() as connection:
            return queue_page(connection, query, describe=describe_case)

    def reviewed(self) -> list[dict[str, Any]]:
        """Every decided case with its latest decision, for exporting labels (oldest case first)."""
        latest = (
            sa.select(decisions.c.photo_id, sa.func.max(decisions.c.id).label("id"))
            .group_by(decisions.c.photo_id)
            .subquery()
        )
        columns = [column for column in cases.c if column.name not in ("cam", "cam_shape")]
        query = (
            sa.select(
                *columns,
                decisions.c.decision,
                decisions.c.hazards.label("decided_hazards"),
                decisions.c.reviewer_key_id,
                decisions.c.reviewer_holder,
                decisions.c.legacy_reviewer,
                decisions.c.created_at.label("decision_at"),
            )
            .join(latest, latest.c.photo_id == cases.c.photo_id)
            .join(decisions, decisions.c.id == latest.c.id)
            .order_by(cases.c.created_at, cases.c.photo_id)
        )
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]


def describe_case(row: sa.Row) -> dict[str, Any]:
    taxonomy = load_taxonomy()
    return {
        "photo_id": row.photo_id,
        "status": row.status,
        "triage": row.triage,
        "created_at": iso(row.created_at),
        "decided_at": iso(row.decided_at),
        "model": {"name": row.model_name, "version": row.model_version},
        "hazards": row.probabilities,
        "flagged": [
            {**taxonomy[h].describe(), "probability": row.probabilities.get(h), "threshold": row.thresholds.get(h)}
            for h in row.flagged
            if h in taxonomy
        ],
        "top_probability": row.top_probability,
        "metadata": {
            "site_id": row.site_id,
            "sector": row.sector,
            "channel": row.channel,
            "note": row.note,
            "reporter": row.reporter,
        },
        "width": row.width,
        "height": row.height,
        "group_id": row.group_id,
        "decision_count": row.decision_count,
        "has_cam": row.cam_shape is not None,
        "detections": row.detections or [],
    }


def describe_decision(row: sa.Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "decision": row.decision,
        "hazards": row.hazards,
        "comment": row.comment,
        "reviewer": {"key_id": row.reviewer_key_id, "holder": row.reviewer_holder},
        **({"legacy_reviewer": row.legacy_reviewer} if row.legacy_reviewer is not None else {}),
        "created_at": iso(row.created_at),
        "via_photo_id": row.via_photo_id,
    }
