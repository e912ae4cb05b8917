"""Formula-safe CSV: the one rule every CSV the service and the `ankang` commands write follows.

A spreadsheet opening a CSV runs a cell that starts with `=`, `+`, `-` or `@` as a formula (and
tab or carriage return can hide such a start), so a site id typed as `=HYPERLINK(...)` or
`-2+3+cmd|' /C calc'!A0` would run on an officer's machine. OWASP's rule: put a single quote in
front of such a text cell, so the spreadsheet shows it as text. Only text cells change: numbers
(negative ones included) stay numbers.

Lines end in CRLF (RFC 4180, what spreadsheets write): Python's csv writer quotes a cell holding
a carriage return only when the line terminator contains one, and an unquoted CR inside a cell
starts a new row in Excel, whose first cell could then be a formula again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
LINE_END = "\r\n"


def neutralise(value: Any) -> Any:
    """The cell as a spreadsheet may open it: a text starting like a formula gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells are neutralised (other columns are shared, not copied)."""
    safe = frame.copy(deep=False)
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            starts = values.astype(object).map(lambda cell: isinstance(cell, str) and cell.startswith(FORMULA_STARTS))
            if starts.any():
                safe[column] = values.astype(object).where(~starts, "'" + values.astype(object).where(starts, ""))
    safe.columns = [neutralise(str(name)) if isinstance(name, str) else name for name in frame.columns]
    return safe


def frame_to_csv(frame: pd.DataFrame, target: str | Path | io.StringIO | None = None, **options: Any) -> str | None:
    """`DataFrame.to_csv` with every text cell neutralised (same arguments; index off by default)."""
    options.setdefault("index", False)
    options.setdefault("lineterminator", LINE_END)
    return safe_frame(frame).to_csv(target, **options)


def frame_to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV bytes through Arrow's writer (several times faster than pandas'), quoting where needed."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buffer = io.BytesIO()
    pacsv.write_csv(
        pa.Table.from_pandas(safe_frame(frame), preserve_index=False),
        buffer,
        write_options=pacsv.WriteOptions(quoting_style="needed"),
    )
    return buffer.getvalue()


def rows_to_csv(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> str:
    """Dict rows as CSV text (header first, extra keys ignored), every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator=LINE_END)
    writer.writeheader()
    writer.writerows({key: neutralise(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()
