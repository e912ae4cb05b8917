"""Union rows from an import file or a request, checked whole: every error at once, each with its
1-based row and field, and nothing written unless every row is right.

Columns: union_id, name, union_type (datasets/labor_risk/schema.yaml's union_type categories, not
"none"), district, parent_id (optional), members, industrial_members, new_employment_members,
migrant_members (0 when absent; at most members), enterprise_ids (';'-separated in a file, a list in
JSON: the enterprises the union covers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runtime.errors import InputError
from serving.unions.grading import union_types
from serving.unions.schema import FOCUS_GROUPS

MAX_LISTED_ERRORS = 50
MAX_ID = 64
MAX_ENTERPRISE_ID = 200
TEXT_LIMITS = {"union_id": MAX_ID, "name": 200, "district": 100, "parent_id": MAX_ID}
REQUIRED = ("union_id", "name", "union_type", "district", "members")
COUNTS = ("members", *(f"{group}_members" for group in FOCUS_GROUPS))
COLUMNS = ("union_id", "name", "union_type", "district", "parent_id", *COUNTS, "enterprise_ids")


@dataclass
class UnionRow:
    union_id: str
    name: str
    union_type: str
    district: str
    parent_id: str | None
    members: int
    industrial_members: int = 0
    new_employment_members: int = 0
    migrant_members: int = 0
    enterprise_ids: list[str] = field(default_factory=list)

    def columns(self) -> dict[str, Any]:
        """The `unions` table's columns of this row."""
        return {name: getattr(self, name) for name in COLUMNS if name != "enterprise_ids"}


class RowErrors:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, row: int | None, union_id: Any, field_name: str, message: str) -> None:
        self.items.append({"row": row, "union_id": union_id, "field": field_name, "message": message})

    def raise_if_any(self, what: str) -> None:
        if not self.items:
            return
        first = self.items[0]
        where = f"row {first['row']}: " if first["row"] is not None else ""
        raise InputError(
            first["field"],
            f"{where}{first['message']} ({len(self.items)} error(s) in {what}; rows count from 1, "
            "the header not counted; nothing was imported)",
            row=first["row"],
            error_count=len(self.items),
            errors=self.items[:MAX_LISTED_ERRORS],
        )


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _count(value: Any) -> int | None | str:
    """An integer >= 0, None when absent, or the error message."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    if isinstance(value, bool):
        return "must be a whole number >= 0, got a boolean"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"must be a whole number >= 0, got {str(value)[:40]!r}"
    if not number.is_integer() or number < 0 or number > 2**31 - 1:
        return f"must be a whole number >= 0, got {value!r}"
    return int(number)


def _enterprise_ids(value: Any) -> list[str] | str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    if isinstance(value, str):
        items = [item.strip() for item in value.split(";")]
    elif isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = [str(item).strip() for item in (value.tolist() if hasattr(value, "tolist") else value)]
    else:
        return "must be a list of enterprise ids (';'-separated in a file)"
    items = [item for item in items if item]
    too_long = [item for item in items if len(item) > MAX_ENTERPRISE_ID]
    if too_long:
        return f"enterprise id {too_long[0][:40]!r}... is longer than {MAX_ENTERPRISE_ID} characters"
    return list(dict.fromkeys(items))  # duplicates once


def check_union(raw: dict[str, Any], errors: RowErrors, *, row: int | None, partial: bool = False) -> UnionRow | None:
    """One union from a mapping; errors go to `errors`. `partial`: a PATCH, only the given fields."""
    types = union_types()
    union_id = _text(raw.get("union_id"))
    found: dict[str, Any] = {}
    start = len(errors.items)
    for name in ("union_id", "name", "union_type", "district", "parent_id"):
        if partial and name not in raw:
            continue
        text = _text(raw.get(name))
        if text is None and name in REQUIRED:
            errors.add(row, union_id, name, "is required")
        elif text is not None and len(text) > TEXT_LIMITS.get(name, 64):
            errors.add(row, union_id, name, f"is longer than {TEXT_LIMITS.get(name, 64)} characters")
        elif name == "union_type" and text not in types:
            errors.add(row, union_id, name, f"{text!r} is not a union type; use one of {', '.join(types)}")
        else:
            found[name] = text
    for name in COUNTS:
        if partial and name not in raw:
            continue
        count = _count(raw.get(name))
        if isinstance(count, str):
            errors.add(row, union_id, name, count)
        elif count is None and name == "members":
            errors.add(row, union_id, name, "is required")
        else:
            found[name] = count or 0
    if not partial or "enterprise_ids" in raw:
        ids = _enterprise_ids(raw.get("enterprise_ids"))
        if isinstance(ids, str):
            errors.add(row, union_id, "enterprise_ids", ids)
        else:
            found["enterprise_ids"] = ids
    if found.get("parent_id") is not None and found.get("parent_id") == union_id:
        errors.add(row, union_id, "parent_id", "a union cannot be its own parent")
    if "members" in found:
        for group in FOCUS_GROUPS:
            if found.get(f"{group}_members", 0) > found["members"]:
                errors.add(row, union_id, f"{group}_members", f"is more than the union's members ({found['members']})")
    unknown = sorted(set(raw) - set(COLUMNS))
    for name in unknown:
        errors.add(row, union_id, str(name)[:64], f"is not a union field; the fields are {', '.join(COLUMNS)}")
    if len(errors.items) > start:
        return None
    return found if partial else UnionRow(**{"parent_id": None, **found})


def check_union_table(frame: pd.DataFrame) -> list[UnionRow]:
    """Every row of an import file, or InputError listing every bad row (1-based, header not counted)."""
    errors = RowErrors()
    missing = [name for name in REQUIRED if name not in frame.columns]
    unknown = [str(name) for name in frame.columns if name not in COLUMNS]
    present = ", ".join(map(str, frame.columns))
    for name in missing:
        errors.add(None, None, name, f"the file has no {name!r} column (its columns: {present})")
    for name in unknown:
        errors.add(None, None, name[:64], f"is not a union column; the columns are {', '.join(COLUMNS)}")
    errors.raise_if_any("the file's columns")
    rows, seen = [], {}
    for number, raw in enumerate(frame.to_dict("records"), start=1):
        union = check_union(raw, errors, row=number)
        if union is None:
            continue
        if union.union_id in seen:
            errors.add(number, union.union_id, "union_id", f"repeats row {seen[union.union_id]}'s union_id")
            continue
        seen[union.union_id] = number
        rows.append(union)
    errors.raise_if_any("the file")
    return rows
