"""Validation of enterprise profiles against the risk schema: every cell checked, every problem named.

`validate_frame` checks a DataFrame (files, large JSON batches) column by column; `validate_profiles`
checks a few JSON profiles cell by cell without building a DataFrame (pandas's per-column overhead
is most of the time for one enterprise). Both give the same batch and the same errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from runtime.errors import InputError
from runtime.risk.cells import (
    boolean_cells,
    boolean_column,
    category_cells,
    category_column,
    is_absent,
    is_text,
    number_column,
    number_of,
)
from runtime.risk.schema import FieldSpec, RiskSchema

MAX_LISTED_ERRORS = 50


@dataclass
class ValidatedBatch:
    """Typed columns: numeric features as float64 (NaN = missing), categories as object ("" = missing)."""

    ids: np.ndarray
    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    missing: np.ndarray  # (rows, features) bool, in schema feature order

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class _FieldErrors:
    field: str
    mask: np.ndarray
    reason: str
    column: pd.Series | np.ndarray  # the cells as given, for error messages


def _range_errors(spec: FieldSpec, values: np.ndarray, column: pd.Series) -> list[_FieldErrors]:
    present = ~np.isnan(values)
    finite = np.isfinite(values)
    safe = np.where(finite, values, 0.0)  # each cell gets one message: non-finite ones only the first
    checks = [(present & ~finite, "must be a finite number")]
    if spec.type == "integer":
        checks.append((np.trunc(safe) != safe, "must be a whole number"))
    if spec.min is not None:
        checks.append((safe < spec.min, f"must be ≥ {_number(spec.min)}"))
    if spec.exclusive_min is not None:
        checks.append((safe <= spec.exclusive_min, f"must be > {_number(spec.exclusive_min)}"))
    if spec.max is not None:
        checks.append((safe > spec.max, f"must be ≤ {_number(spec.max)}"))
    return [
        _FieldErrors(spec.name, mask & finite if i else mask, reason, column) for i, (mask, reason) in enumerate(checks)
    ]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _column_error(field: str, message: str) -> dict[str, Any]:
    """A problem of the input's columns rather than of one row (`row` is null)."""
    return {"row": None, "enterprise_id": None, "field": field, "message": message}


def _unknown_field_errors(schema: RiskSchema, names: list[Any]) -> list[dict[str, Any]]:
    allowed = set(schema.fields) | {schema.target}
    return [
        _column_error(str(name), f"unknown field {str(name)!r}; known fields: {', '.join(schema.fields)}")
        for name in names
        if name not in allowed
    ]


def _no_id_column(schema: RiskSchema, rows: int) -> tuple[np.ndarray, list[_FieldErrors], list[dict[str, Any]]]:
    name = schema.id_field
    error = _column_error(name, f"{name} is required for every enterprise; the input has no {name} column")
    return np.full(rows, None, dtype=object), [], [error]


def _ids(
    schema: RiskSchema, frame: pd.DataFrame, *, text_cells: bool
) -> tuple[np.ndarray, list[_FieldErrors], list[dict[str, Any]]]:
    """(ids, their row errors, the column's error when there is no id column)."""
    name = schema.id_field
    if name not in frame.columns:
        return _no_id_column(schema, len(frame))
    column = frame[name]
    raw = column.to_numpy(dtype=object, na_value=None)
    missing = column.isna().to_numpy() | (raw == "")
    textual = is_text(column) or (column.dtype == object and column.map(type).eq(str).all())
    if not textual and text_cells:  # a file's numeric id column (e.g. Parquet int64): use its text
        column, textual = column.astype(str), True
        raw = np.where(missing, None, column.to_numpy(dtype=object))
    wrong = np.zeros(len(raw), bool)
    if not textual:
        wrong = ~missing & np.fromiter((not isinstance(v, str) for v in raw), dtype=bool, count=len(raw))
    errors = [
        _FieldErrors(name, missing, "is required", frame[name]),
        _FieldErrors(name, wrong, "must be a string", frame[name]),
    ]
    return raw, errors, []


def validate_frame(schema: RiskSchema, frame: pd.DataFrame, *, text_cells: bool) -> ValidatedBatch:
    """Check every cell against the schema; raise one InputError listing every problem (capped).

    `text_cells`: the frame is a file's (CSV cells are text), so errors count data rows below the header."""
    ids, errors, column_errors = _ids(schema, frame, text_cells=text_cells)
    column_errors = _unknown_field_errors(schema, list(frame.columns)) + column_errors
    numeric, categorical, missing = {}, {}, np.zeros((len(frame), len(schema.features)), bool)
    for index, name in enumerate(schema.features):
        spec, column = schema.fields[name], frame[name] if name in frame.columns else None
        if column is None:
            missing[:, index] = True
            if spec.type == "category":
                categorical[name] = np.full(len(frame), "", dtype=object)
            else:
                numeric[name] = np.full(len(frame), np.nan)
            continue
        if spec.type == "category":
            categorical[name], missing[:, index], wrong = category_column(spec, column)
            errors.append(_FieldErrors(name, wrong, f"must be one of {', '.join(spec.categories)}", column))
            continue
        parse = boolean_column if spec.type == "boolean" else number_column
        numeric[name], missing[:, index], wrong = parse(column, text_cells=text_cells)
        kind = (
            "true or false" if spec.type == "boolean" else ("a whole number" if spec.type == "integer" else "a number")
        )
        errors.append(_FieldErrors(name, wrong, f"must be {kind}", column))
        if spec.type != "boolean":
            errors.extend(_range_errors(spec, np.where(wrong, np.nan, numeric[name]), column))
    _raise_if_any(column_errors, errors, ids, file=text_cells)
    return ValidatedBatch(ids=ids, numeric=numeric, categorical=categorical, missing=missing)


def _profile_columns(schema: RiskSchema, profiles: list[dict]) -> dict[str, np.ndarray]:
    """The profiles' fields as object arrays (None where a profile lacks the field), in first-seen order."""
    names = list(dict.fromkeys(key for profile in profiles for key in profile))
    columns = {}
    for name in names:
        cells = np.empty(len(profiles), dtype=object)
        for row, profile in enumerate(profiles):
            cells[row] = profile.get(name)
        columns[name] = cells
    return columns


def _validate_cells(spec: FieldSpec, cells: np.ndarray, errors: list[_FieldErrors]) -> tuple[np.ndarray, np.ndarray]:
    """One field's values and missing mask from JSON cells, appending its errors (as validate_frame words them)."""
    if spec.type == "category":
        values, missing, wrong = category_cells(spec, cells)
        errors.append(_FieldErrors(spec.name, wrong, f"must be one of {', '.join(spec.categories)}", cells))
        return values, missing
    if spec.type == "boolean":
        values, missing, wrong = boolean_cells(cells, text_cells=False)
        errors.append(_FieldErrors(spec.name, wrong, "must be true or false", cells))
        return values, missing
    parsed = [number_of(v) for v in cells]
    values = np.array([value for value, _, _ in parsed], dtype=float)
    missing = np.array([blank for _, blank, _ in parsed], dtype=bool)
    wrong = np.array([bad for _, _, bad in parsed], dtype=bool)
    kind = "a whole number" if spec.type == "integer" else "a number"
    errors.append(_FieldErrors(spec.name, wrong, f"must be {kind}", cells))
    errors.extend(_range_errors(spec, values, cells))
    return values, missing


def _profile_ids(
    schema: RiskSchema, columns: dict[str, np.ndarray], rows: int
) -> tuple[np.ndarray, list[_FieldErrors], list[dict[str, Any]]]:
    if schema.id_field not in columns:
        return _no_id_column(schema, rows)
    # NaN as None, as a DataFrame column gives it (a NaN id is no id: "an enterprise without enterprise_id")
    ids = np.array([None if isinstance(v, float) and v != v else v for v in columns[schema.id_field]], dtype=object)
    missing = np.array([is_absent(v) for v in ids], dtype=bool)
    wrong = ~missing & np.array([not isinstance(v, str) for v in ids], dtype=bool)
    return (
        ids,
        [
            _FieldErrors(schema.id_field, missing, "is required", ids),
            _FieldErrors(schema.id_field, wrong, "must be a string", ids),
        ],
        [],
    )


def validate_profiles(schema: RiskSchema, profiles: list[dict]) -> ValidatedBatch:
    """`validate_frame` for a few JSON profiles, cell by cell without building a DataFrame (pandas's
    per-column overhead is most of the time for one enterprise); the same checks, errors and batch."""
    columns = _profile_columns(schema, profiles)
    ids, errors, column_errors = _profile_ids(schema, columns, len(profiles))
    column_errors = _unknown_field_errors(schema, list(columns)) + column_errors
    numeric, categorical = {}, {}
    missing = np.ones((len(profiles), len(schema.features)), dtype=bool)
    for index, name in enumerate(schema.features):
        spec = schema.fields[name]
        cells = columns.get(name, np.full(len(profiles), None, dtype=object))
        values, missing[:, index] = _validate_cells(spec, cells, errors)
        (categorical if spec.type == "category" else numeric)[name] = values
    _raise_if_any(column_errors, errors, ids, file=False)
    return ValidatedBatch(ids=ids, numeric=numeric, categorical=categorical, missing=missing)


ROW_NUMBERING = {False: "rows count from 1 in the order sent", True: "data rows count from 1 below the header line"}


def _raise_if_any(
    column_errors: list[dict[str, Any]], errors: list[_FieldErrors], ids: np.ndarray, *, file: bool
) -> None:
    """One InputError with every problem: column problems first, then row problems by row (listing capped)."""
    bad = [(row, item) for item in errors if item.mask.any() for row in np.flatnonzero(item.mask)[:MAX_LISTED_ERRORS]]
    if not bad and not column_errors:
        return
    total = len(column_errors) + sum(int(item.mask.sum()) for item in errors)
    bad.sort(key=lambda pair: pair[0])
    room = max(MAX_LISTED_ERRORS - len(column_errors), 0)
    listed = (column_errors + [_error_entry(int(row), item, ids, file=file) for row, item in bad[:room]])[
        :MAX_LISTED_ERRORS
    ]
    first = listed[0]
    rows = len({entry["row"] for entry in listed if entry["row"] is not None})
    notes = ([ROW_NUMBERING[file]] if rows else []) + (
        [f"{total} problems in all; fix them and send the whole batch again"] if total > 1 else []
    )
    summary = f" ({'; '.join(notes)})" if notes else ""
    unknown = [entry["field"] for entry in column_errors if entry["message"].startswith("unknown field")]
    raise InputError(
        first["field"],
        first["message"] + summary,
        enterprise_id=first["enterprise_id"],
        row=first["row"],
        error_count=total,
        rows_listed=rows,
        errors=listed,
        **({"unknown_fields": unknown} if unknown else {}),
    )


def _error_entry(index: int, item: _FieldErrors, ids: np.ndarray, *, file: bool) -> dict[str, Any]:
    """The problem of one cell; `row` is 1-based (a file's data rows, the header not counted)."""
    value = item.column.iloc[index] if isinstance(item.column, pd.Series) else item.column[index]
    value = None if value is None or (isinstance(value, float) and np.isnan(value)) else value
    value = value.item() if isinstance(value, np.generic) else value
    enterprise, who = _who(ids[index])
    got = "" if item.reason == "is required" else f", got {value!r}"
    row = index + 1
    return {
        "row": row,
        "enterprise_id": enterprise,
        "field": item.field,
        "message": f"{who} ({'data row' if file else 'row'} {row}): {item.field} {item.reason}{got}",
    }


def _who(enterprise: Any) -> tuple[str | None, str]:
    """(the id an error names, the words for the enterprise): only a text id identifies one (a number
    is refused, and a DataFrame would show an integer id of a column with gaps as a float)."""
    if isinstance(enterprise, str) and enterprise:
        return enterprise, f"enterprise {enterprise!r}"
    return None, (
        "an enterprise without enterprise_id"
        if is_absent(enterprise)
        else "an enterprise whose enterprise_id is not text"
    )
