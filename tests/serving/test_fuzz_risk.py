"""Hypothesis against the enterprise validator and the risk scorer: bad profiles raise InputError, nothing else.

Drives `RiskScorer.score_profiles` (the JSON endpoint's whole path: DataFrame, validation, ONNX,
floors, reasons) and `read_table` + `score_table` (the file endpoint's path) with profiles that
mix valid values, wrong types, non-finite and huge numbers, nested JSON and unknown fields.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import InputError
from runtime.paths import MODELS_DIR
from serving.risk import RiskScorer

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


SCORER = None  # loaded on first use: hypothesis strategies need it before fixtures exist


def _scorer() -> RiskScorer:
    global SCORER
    if SCORER is None:
        SCORER = RiskScorer.load(MODELS_DIR / "labor_risk", threads=1)
    return SCORER


ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.sampled_from([10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", " ", "1", "0.5", "true", "NaN", "inf", "-0", "1e309", "１２"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def profiles(draw) -> list:
    fields = list(_scorer().schema.fields)
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        row = {}
        for name in draw(st.lists(st.sampled_from(fields), max_size=len(fields), unique=True)):
            spec = _scorer().schema.fields[name]
            valid = (
                st.sampled_from(spec.categories)
                if spec.categories
                else st.booleans()
                if spec.type == "boolean"
                else st.text(min_size=1, max_size=20)
                if spec.type == "string"
                else st.integers(0, 100)
                if spec.type == "integer"
                else st.floats(0.01, 1.0)
            )
            row[name] = draw(st.one_of(valid, valid, ODD_VALUES))
        if draw(st.booleans()):
            row.setdefault("enterprise_id", draw(st.text(min_size=1, max_size=10)))
        if draw(st.integers(0, 9)) == 0:
            row[draw(st.text(max_size=8))] = draw(ODD_VALUES)
        rows.append(row)
    return draw(st.one_of(st.just(rows), st.just(rows), ODD_VALUES.map(lambda value: [value])))


def check_result(results: list, profiles: list) -> None:
    assert len(results) == len(profiles)
    for result in results:
        assert result["tier"] in (1, 2, 3, 4, 5)
        assert all(math.isfinite(p) for p in result.get("probabilities", {}).values())


@FUZZ
@given(data=profiles())
def test_json_profiles_score_or_raise_input_error(data):
    try:
        results = _scorer().score_profiles(data)
    except InputError as error:
        assert 400 <= error.status_code < 500 and isinstance(error.field, str) and error.message
        return
    check_result(results, data)


@FUZZ
@given(data=profiles(), fmt=st.sampled_from(["csv", "csv-bytes"]))
def test_files_score_or_raise_input_error(data, fmt):
    import pandas as pd

    rows = [row for row in data if isinstance(row, dict)] or [{}]
    if fmt == "csv":
        payload = pd.DataFrame(rows).to_csv(index=False).encode("utf-8", errors="replace")
    else:
        payload = ",".join(map(str, rows[0])).encode("utf-8", errors="replace") + b'\n\x00\xff,"unterminated'
    try:
        table = _scorer().score_table(payload, filename="enterprises.csv", content_type="text/csv")
    except InputError as error:
        assert 400 <= error.status_code < 500 and isinstance(error.field, str) and error.message
        return
    assert table.startswith(b"enterprise_id") or b"enterprise_id" in table.splitlines()[0]


def test_fraction_in_a_boolean_field_is_an_input_error():
    """Found by this file: a float in a boolean column wrote into a read-only array (a 500)."""
    import pytest

    with pytest.raises(InputError, match="collective_petition_12m") as caught:
        _scorer().score_profiles([{"enterprise_id": "a", "collective_petition_12m": 0.5}])
    assert caught.value.status_code == 422


def _outcome(validate):
    """A validated batch as plain lists, or the InputError as a dict without the echoed values (a
    DataFrame shows an integer cell of a float column as 1.0, the JSON path as the 1 it was sent)."""
    try:
        batch = validate()
    except InputError as error:
        body = error.to_dict()["error"]
        strip = lambda message: message.split(", got ")[0]  # noqa: E731
        body["message"] = strip(body["message"])
        for entry in body.get("errors", []):
            entry["message"] = strip(entry["message"])
        return body
    numeric = {name: np.where(np.isnan(values), -12345.0, values).tolist() for name, values in batch.numeric.items()}
    return {
        "ids": list(batch.ids),
        "numeric": numeric,
        "missing": batch.missing.tolist(),
        "categorical": {name: list(values) for name, values in batch.categorical.items()},
    }


@FUZZ
@given(data=profiles())
def test_json_fast_path_validates_exactly_like_the_dataframe_path(data):
    from runtime.risk.validate import validate_frame, validate_profiles

    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        return
    schema = _scorer().schema
    assert _outcome(lambda: validate_profiles(schema, data)) == _outcome(
        lambda: validate_frame(schema, pd.DataFrame(data), text_cells=False)
    )


MIXED_COLUMNS = [  # one field, differently typed cells: pandas builds object or float columns here
    [{"enterprise_id": "a", "headcount": 40}, {"enterprise_id": "b", "headcount": " "}],
    [{"enterprise_id": "a", "headcount": 40.5}, {"enterprise_id": "b", "headcount": "12"}],
    [{"enterprise_id": "a", "headcount": True}, {"enterprise_id": "b", "headcount": None}],
    [{"enterprise_id": 1}, {"enterprise_id": "b", "industry": "x"}],
    [{"enterprise_id": "a", "industry": 5}, {"enterprise_id": "b", "industry": None}],
    [{"enterprise_id": "a", "unrectified_order": 1}, {"enterprise_id": "b", "unrectified_order": " "}],
    [{"enterprise_id": "a", "unrectified_order": 2.0}, {"enterprise_id": "b", "unrectified_order": "yes"}],
    [{"enterprise_id": "a", "firm_age_years": float("inf")}, {"enterprise_id": "b", "firm_age_years": [1]}],
]


@pytest.mark.parametrize("data", MIXED_COLUMNS)
def test_json_fast_path_agrees_on_mixed_columns(data):
    from runtime.risk.validate import validate_frame, validate_profiles

    schema = _scorer().schema
    assert _outcome(lambda: validate_profiles(schema, data)) == _outcome(
        lambda: validate_frame(schema, pd.DataFrame(data), text_cells=False)
    )


PLAIN_CELLS = [
    None,
    True,
    False,
    np.True_,
    0,
    1,
    2,
    -1,
    10**400,
    -(10**400),
    0.0,
    1.0,
    0.5,
    float("nan"),
    float("inf"),
    np.float64(1),
    np.int64(0),
    np.int64(7),
]


@pytest.mark.parametrize("seed", range(12))
def test_large_object_columns_cast_in_one_step_like_cell_by_cell(seed, monkeypatch):
    """Above SMALL_BATCH_ROWS an object column of None/int/float (bool) cells is cast by numpy; the
    answer (values, missing, errors and their rows) must be the cell-by-cell one."""
    import runtime.risk.cells as cells
    from runtime.risk.validate import validate_frame

    rng = np.random.default_rng(seed)
    pool = [PLAIN_CELLS[i] for i in rng.choice(len(PLAIN_CELLS), size=int(rng.integers(1, 5)), replace=False)]
    rows = [
        {
            "enterprise_id": f"e{i}",
            "unrectified_order": pool[rng.integers(len(pool))],
            "headcount": pool[rng.integers(len(pool))],
        }
        for i in range(300)
    ]
    frame = pd.DataFrame(rows).astype(object)
    fast = _outcome(lambda: validate_frame(_scorer().schema, frame, text_cells=False))
    monkeypatch.setattr(cells, "SMALL_BATCH_ROWS", 10**9)
    assert _outcome(lambda: validate_frame(_scorer().schema, frame, text_cells=False)) == fast


def test_an_integer_beyond_float_range_is_not_finite():
    """Found by the test above: float(10**400) raised OverflowError (a 500) in a number field."""
    with pytest.raises(InputError, match="headcount must be a finite number") as caught:
        _scorer().score_profiles([{"enterprise_id": "a", "headcount": -(10**400)}])
    assert caught.value.status_code == 422
