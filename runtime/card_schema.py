"""The JSON Schemas of model cards (runtime/schemas/*.json) and the check that names the card and the field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from runtime.errors import ModelIntegrityError

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"


@cache
def card_schema(kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS_DIR / f"{kind}.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def check_card(card: Mapping[str, Any], *, kind: str, where: str | Path) -> None:
    """Raise ModelIntegrityError naming the card file and the first field at fault if `card` breaks the
    shared header schema or `kind`'s schema (photo_card, risk_card; card_header: the header alone)."""
    for schema in dict.fromkeys(("card_header", kind)):
        errors = sorted(card_schema(schema).iter_errors(card), key=lambda e: [str(part) for part in e.path])
        if errors:
            field = ".".join(str(part) for part in errors[0].path) or "(top level)"
            raise ModelIntegrityError(f"{where}: {field}: {errors[0].message} (runtime/schemas/{schema}.json)")
