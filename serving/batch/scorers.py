"""The Ray actors: each loads the service's model once (one onnxruntime session) and scores batches.

They call the API's own code: `PhotoModel.run_batch` and `PhotoModel.assessment` after `decode_photo` and the card's
preprocessing, `RiskScorer.score_frame` and `results_table`, so a batch result is the API's answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from runtime.errors import InputError
from serving.assessment import PhotoAssessment
from serving.batch.sources import read_bytes
from serving.enterprises.records import profile_fingerprints
from serving.images import decode_photo
from serving.photo import PhotoModel
from serving.risk import RiskScorer
from serving.settings import ServingSettings

# Explicit types, so that a batch whose cells are all null still has the columns' types.
PHOTO_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("image", "model_name", "model_version", "triage", "flagged", "hazards", "error")]
)


class RowError(Exception):
    """An actor's InputError as (field, message): these args survive the trip to the driver, where
    `jobs` raises the InputError again (InputError's own keyword-only context does not unpickle)."""

    def __init__(self, field: str, message: str):
        super().__init__(field, message)


class PhotoScorer:
    """Scores a batch of photo URIs; a photo the API would refuse gets its 4xx message in `error`."""

    def __init__(self, model_dir: str, threads: int = 1):
        self.model = PhotoModel(Path(model_dir), settings=ServingSettings(ort_threads=threads))

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        inputs, sizes, rows = [], [], []
        for uri in batch["image"]:
            try:
                image = decode_photo(read_bytes(uri))
                inputs.append(self.model.card.preprocess(image))
                sizes.append((image.width, image.height))
                rows.append({"image": uri, "error": None})
            except (InputError, OSError) as error:
                rows.append({"image": uri, "error": str(error)})
        outputs = self.model.run_batch(np.stack(inputs)) if inputs else []
        scored = iter(
            self.model.assessment(output, width=width, height=height) for output, (width, height) in zip(outputs, sizes)
        )
        card = self.model.card
        for row in rows:
            assessment = next(scored) if row["error"] is None else None
            columns = _photo_columns(assessment) if assessment else {"triage": None, "flagged": None, "hazards": None}
            row.update(model_name=card.name, model_version=card.version, **columns)
        return pa.Table.from_pylist(rows, schema=PHOTO_SCHEMA)


def _photo_columns(assessment: PhotoAssessment) -> dict:
    return {
        "triage": assessment.triage,
        "flagged": ";".join(assessment.flagged_types),
        "hazards": json.dumps(assessment.hazards),
    }


class EnterpriseScorer:
    """Scores a batch of enterprise rows as `/v1/enterprises/score-file` does; rows whose id is in
    `done` (already in the output) are dropped first."""

    def __init__(self, model_dir: str, done: frozenset[str] = frozenset(), threads: int = 1):
        self.scorer = RiskScorer.load(Path(model_dir), threads=threads)
        self.done = done
        tiers = [(f"p_tier_{tier}", pa.float64()) for tier in self.scorer.schema.tiers]
        self.output_schema = pa.schema(
            [
                (self.scorer.schema.id_field, pa.string()),
                ("tier", pa.int64()),
                ("model_tier", pa.int64()),
                *tiers,
                ("rules_fired", pa.string()),
                ("reasons", pa.string()),
                ("imputed", pa.string()),
                ("profile_fingerprint", pa.string()),  # serving/enterprises/records.py keeps them by it
                ("model_version", pa.string()),
            ]
        )

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        id_field = self.scorer.schema.id_field
        if self.done and id_field in batch.columns:
            batch = batch[~batch[id_field].astype(str).isin(self.done)]
        if batch.empty:
            return self.output_schema.empty_table()
        try:
            scores = self.scorer.score_frame(batch.reset_index(drop=True), text_cells=True)
        except InputError as error:
            raise RowError(error.field, error.message) from None
        table = self.scorer.results_table(scores)
        table["profile_fingerprint"] = profile_fingerprints(scores.batch)
        table["model_version"] = self.scorer.info["version"]
        return pa.Table.from_pandas(table, schema=self.output_schema, preserve_index=False)
