"""The served labor-risk model: loaded once, scores JSON profiles and CSV/Parquet files within the request limits.

Validation, the tier decision, policy floors and reasons are the runtime's (runtime/risk/); this
module adds what a request needs: its size limits and its answer format.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from runtime.errors import InputError
from runtime.modeldir import ModelDir
from runtime.risk.cells import SMALL_BATCH_ROWS
from runtime.risk.floors import POLICY_PATH, load_policy
from runtime.risk.scoring import BatchScores, RiskModel
from runtime.risk.tables import read_table, table_to_csv
from runtime.risk.validate import MAX_LISTED_ERRORS, ROW_NUMBERING, validate_profiles
from runtime.session import SessionOptions

MAX_JSON_ENTERPRISES = 10_000
MAX_FILE_ROWS = 200_000
# The one score-file size limit: the scorer refuses a larger file, and the service's body limit for
# /v1/enterprises/score-file (serving/service.py) is this plus the multipart form's framing, so a file
# within the limit always reaches the scorer and a larger one is refused while it streams in.
MAX_FILE_BYTES = 64 * 1024 * 1024
MULTIPART_FRAMING_BYTES = 64 * 1024  # boundaries and part headers around the file
MAX_UPLOAD_BYTES = MAX_FILE_BYTES + MULTIPART_FRAMING_BYTES

# Called with what was scored (and the score-file table when one was built) before the answer goes
# out: serving/enterprises/records.py keeps every score through it.
OnScored = Callable[[BatchScores, "pd.DataFrame | None"], None]


class RiskScorer(RiskModel):
    """The released risk model: validation from its card's schema, its trees compiled at load (or one ONNX
    session where no C compiler is found: runtime/risk/engines.py), policy floors, reasons."""

    DEFAULT_ENGINE = "auto"

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        policy_path: str | Path = POLICY_PATH,
        threads: int | None = None,
        options: SessionOptions | None = None,
        engine: str | None = None,
    ) -> RiskScorer:
        """`options` (the service's: `ServingSettings.session_options`), else `threads` alone (None: the
        usable cores, runtime.session; the compiled engine uses as many); `engine`
        (`ServingSettings.risk_engine`): auto (the default), compiled or onnxruntime."""
        options = options or SessionOptions(threads=threads)
        return cls(ModelDir.load(model_dir), policy=load_policy(policy_path), options=options, engine=engine)

    def score_profiles(self, profiles: list[dict], *, on_scored: OnScored | None = None) -> list[dict]:
        """Score JSON profiles (at most MAX_JSON_ENTERPRISES); every bad value raises InputError (422)."""
        if not isinstance(profiles, list) or not profiles:
            raise InputError("enterprises", "must be a non-empty list of enterprise profiles")
        if len(profiles) > MAX_JSON_ENTERPRISES:
            raise InputError(
                "enterprises",
                f"at most {MAX_JSON_ENTERPRISES} enterprises per request, got {len(profiles)}; "
                "split the batch or upload a file to /v1/enterprises/score-file",
                status_code=413,
            )
        not_objects = [row for row, item in enumerate(profiles, start=1) if not isinstance(item, dict)]
        if not_objects:
            errors = [
                {
                    "row": row,
                    "enterprise_id": None,
                    "field": "enterprises",
                    "message": f"row {row} is not an object with profile fields",
                }
                for row in not_objects
            ]
            raise InputError(
                "enterprises",
                f"{errors[0]['message']} ({ROW_NUMBERING[False]}; {len(errors)} in all)",
                row=not_objects[0],
                error_count=len(errors),
                errors=errors[:MAX_LISTED_ERRORS],
            )
        if len(profiles) <= SMALL_BATCH_ROWS:
            scores = self.score_batch(validate_profiles(self.schema, profiles), reasons=True)
        else:
            scores = self.score_frame(pd.DataFrame(profiles), text_cells=False)
        if on_scored is not None:
            on_scored(scores, None)
        return self.results(scores)

    def score_table(
        self,
        data: bytes,
        *,
        filename: str = "",
        content_type: str = "",
        reasons: bool = True,
        on_scored: OnScored | None = None,
    ) -> bytes:
        """Score a CSV or Parquet file (at most MAX_FILE_ROWS rows); returns CSV, one row per enterprise."""
        frame = read_table(
            data, max_bytes=MAX_FILE_BYTES, max_rows=MAX_FILE_ROWS, filename=filename, content_type=content_type
        )
        scores = self.score_frame(frame, text_cells=True, reasons=reasons)
        table = self.results_table(scores)
        if on_scored is not None:
            on_scored(scores, table)
        return table_to_csv(table)
