"""Profile files in and result tables out: a CSV or Parquet upload as a DataFrame, a table as CSV bytes."""

from __future__ import annotations

import io

import pandas as pd

from runtime.errors import InputError
from runtime.safe_csv import frame_to_csv_bytes


def read_table(
    data: bytes, *, max_bytes: int, max_rows: int, filename: str = "", content_type: str = ""
) -> pd.DataFrame:
    """A CSV (all cells as text) or Parquet upload as a DataFrame, within the size limits."""
    if not data:
        raise InputError("file", "is empty; upload a CSV or Parquet file with one enterprise per row")
    if len(data) > max_bytes:
        raise InputError("file", f"is {len(data)} bytes; the limit is {max_bytes} bytes", status_code=413)
    is_parquet = filename.lower().endswith((".parquet", ".pq")) or "parquet" in content_type or data[:4] == b"PAR1"
    try:
        if is_parquet:
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as error:  # any parser failure is the client's file, not a server error
        kind = "Parquet" if is_parquet else "CSV"
        raise InputError("file", f"could not be read as {kind}: {error}") from error
    if len(frame) > max_rows:
        raise InputError("file", f"has {len(frame)} rows; the limit is {max_rows} rows per file", status_code=413)
    if frame.empty:
        raise InputError("file", "has no rows; upload one enterprise per row")
    return frame


def table_to_csv(table: pd.DataFrame) -> bytes:
    """Formula-safe CSV bytes (runtime/safe_csv.py): an enterprise id like `=cmd|...` is echoed as text."""
    return frame_to_csv_bytes(table)
