"""serving.risk: schema-driven validation, policy floors, reasons, files, limits, integrity (released model)."""

from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from runtime.errors import InputError, ModelIntegrityError
from runtime.paths import DATASETS_DIR, MODELS_DIR
from runtime.risk.floors import load_policy
from runtime.risk.validate import MAX_LISTED_ERRORS
from serving.risk import MAX_JSON_ENTERPRISES, RiskScorer

SCHEMA = yaml.safe_load((DATASETS_DIR / "labor_risk" / "schema.yaml").read_text(encoding="utf-8"))
FEATURES = [name for name, spec in SCHEMA["fields"].items() if spec.get("feature", True)]


@pytest.fixture(scope="module")
def scorer() -> RiskScorer:
    return RiskScorer.load(MODELS_DIR / "labor_risk", threads=1)


def low_risk(enterprise_id: str = "E-1", **overrides) -> dict:
    profile = {
        "enterprise_id": enterprise_id,
        "industry": "services",
        "union_type": "enterprise",
        "ownership": "private",
        "headcount": 40,
        "firm_age_years": 8.5,
        "share_migrant_workers": 0.3,
        "share_dispatch_workers": 0.02,
        "share_platform_workers": 0.0,
        "contract_signing_rate": 0.98,
        "social_insurance_coverage": 0.95,
        "social_insurance_arrears_months": 0,
        "avg_monthly_overtime_hours": 12.0,
        "wage_to_local_minimum_ratio": 1.9,
        "wage_arrears_cases_12m": 0,
        "wage_arrears_workers_12m": 0,
        "wage_arrears_amount_12m": 0.0,
        "complaints_12m": 0,
        "petitions_12m": 0,
        "arbitration_cases_12m": 0,
        "work_injury_cases_12m": 0,
        "collective_petition_12m": False,
        "serious_injury_or_fatality_12m": False,
        "layoff_or_relocation": "none",
        "mass_incident_36m": 0,
        "has_workers_congress": True,
        "has_collective_contract": True,
        "credit_grade": "A",
        "violations_sanctioned_36m": 0,
        "unrectified_order": False,
        "open_photo_hazards": 0,
        "open_major_photo_hazards": 0,
    }
    return profile | overrides


def test_released_card_carries_the_dataset_schema(scorer):
    assert scorer.model.card["schema"] == SCHEMA
    assert scorer.schema.features == FEATURES == [spec["name"] for spec in scorer.model.card["input_spec"]]


def invalid_values(spec: dict) -> list[tuple[object, str]]:
    """Values the schema forbids for a field, with the words the error must use."""
    kind = spec["type"]
    if kind == "category":
        return [("not-a-category", "must be one of"), (3, "must be one of")]
    if kind == "boolean":
        return [("yes", "must be true or false"), (2, "must be true or false")]
    bad = [("12", "must be a"), (True, "must be a"), (float("inf"), "must be a finite number")]
    if kind == "integer":
        bad.append((1.5, "must be a whole number"))
    if "min" in spec:
        bad.append((spec["min"] - 1, f"must be ≥ {spec['min']}"))
    if "exclusive_min" in spec:
        bad.append((spec["exclusive_min"], f"must be > {spec['exclusive_min']}"))
    if "max" in spec:
        bad.append((spec["max"] + 1, f"must be ≤ {spec['max']}"))
    return bad


CASES = [(name, value, words) for name in FEATURES for value, words in invalid_values(SCHEMA["fields"][name])]


@pytest.mark.parametrize(("field", "value", "words"), CASES, ids=[f"{c[0]}={c[1]!r}" for c in CASES])
def test_every_schema_constraint_is_enforced_naming_field_and_enterprise(scorer, field, value, words):
    with pytest.raises(InputError, match=re.escape(words)) as caught:
        scorer.score_profiles([low_risk("OK-1"), low_risk("BAD-7", **{field: value})])
    error = caught.value
    assert error.field == field and error.status_code == 422
    assert error.context["enterprise_id"] == "BAD-7" and error.context["row"] == 2  # 1-based: the second profile
    assert "'BAD-7' (row 2)" in error.message and field in error.message
    assert "rows count from 1 in the order sent" in error.message
    assert error.context["error_count"] == 1  # one message per bad cell


@pytest.mark.parametrize("field", FEATURES)
def test_every_schema_boundary_and_category_is_accepted(scorer, field):
    spec = SCHEMA["fields"][field]
    values = spec.get("categories") or (
        [True, False]
        if spec["type"] == "boolean"
        else [v for v in (spec.get("min"), spec.get("max")) if v is not None] or [1]
    )
    results = scorer.score_profiles([low_risk(f"E{i}", **{field: value}) for i, value in enumerate(values)])
    assert [r["enterprise_id"] for r in results] == [f"E{i}" for i in range(len(values))]


def test_enterprise_id_is_required_and_must_be_text(scorer):
    with pytest.raises(InputError, match="enterprise_id is required") as caught:
        scorer.score_profiles([{"industry": "mining"}])
    assert caught.value.field == "enterprise_id"
    with pytest.raises(InputError, match="enterprise_id must be a string"):
        scorer.score_profiles([low_risk(enterprise_id=12345)])


def test_unknown_field_is_rejected_not_silently_imputed(scorer):
    with pytest.raises(InputError, match="unknown field 'headcont'") as caught:
        scorer.score_profiles([low_risk(headcont=40)])
    assert caught.value.field == "headcont"


@pytest.mark.parametrize("rows", [2, 300])  # the JSON fast path and the DataFrame path
def test_unknown_fields_do_not_hide_the_other_errors(scorer, rows):
    """An unknown field used to answer alone; every problem of the request comes back at once."""
    profiles = [low_risk(f"E{i}") for i in range(rows)]
    profiles[0] |= {"headcont": 40}
    profiles[1] |= {"headcount": -5, "industri": "mining"}
    with pytest.raises(InputError, match="unknown field 'headcont'") as caught:
        scorer.score_profiles(profiles)
    error = caught.value.to_dict()["error"]
    assert error["error_count"] == 3 and error["unknown_fields"] == ["headcont", "industri"]
    assert [(e["field"], e["row"]) for e in error["errors"]] == [
        ("headcont", None),
        ("industri", None),
        ("headcount", 2),
    ]
    assert error["errors"][2]["message"] == "enterprise 'E1' (row 2): headcount must be ≥ 1, got -5"


def test_a_file_without_the_id_column_still_lists_its_other_problems(scorer):
    with pytest.raises(InputError, match="the input has no enterprise_id column") as caught:
        scorer.score_table(b"industry,headcount\nmining,0\n", filename="x.csv")
    error = caught.value.to_dict()["error"]
    assert [(e["field"], e["row"]) for e in error["errors"]] == [("enterprise_id", None), ("headcount", 1)]
    assert (
        error["errors"][1]["message"]
        == "an enterprise without enterprise_id (data row 1): headcount must be ≥ 1, got '0'"
    )


def test_missing_fields_are_imputed_listed_and_never_reasons(scorer):
    [result] = scorer.score_profiles(
        [{"enterprise_id": "ONLY-ID", "wage_arrears_workers_12m": 60, "complaints_12m": 9}]
    )
    assert set(result["imputed"]) == set(FEATURES) - {"wage_arrears_workers_12m", "complaints_12m"}
    assert {reason["field"] for reason in result["reasons"]} <= {"wage_arrears_workers_12m", "complaints_12m"}
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-3


def test_reasons_name_fields_with_their_values_largest_first(scorer):
    [result] = scorer.score_profiles(
        [low_risk(wage_arrears_workers_12m=80, wage_arrears_cases_12m=3, contract_signing_rate=0.4, complaints_12m=12)]
    )
    reasons = result["reasons"]
    assert 1 <= len(reasons) <= 3 and all(r["contribution"] > 0 for r in reasons)
    assert [r["contribution"] for r in reasons] == sorted((r["contribution"] for r in reasons), reverse=True)
    by_field = {r["field"]: r["value"] for r in reasons}
    assert by_field.get("wage_arrears_workers_12m", 80) == 80 and by_field.get("contract_signing_rate", 0.4) == 0.4
    assert result["tier"] > scorer.score_profiles([low_risk()])[0]["tier"] or result["tier"] >= 4


@pytest.mark.parametrize(
    ("overrides", "rule", "floor"),
    [
        ({"credit_grade": "C"}, "credit_grade_c", 4),
        ({"mass_incident_36m": 1}, "mass_incident_36m", 5),
        ({"serious_injury_or_fatality_12m": True}, "serious_injury_or_fatality", 4),
        ({"collective_petition_12m": True}, "collective_petition", 4),
        ({"wage_arrears_workers_12m": 10, "wage_arrears_cases_12m": 1}, "wage_arrears_10_workers", 4),
        ({"unrectified_order": True}, "unrectified_order", 3),
        ({"open_major_photo_hazards": 1, "open_photo_hazards": 1}, "open_major_photo_hazard", 3),
    ],
)
def test_policy_floors_raise_the_tier_and_say_which_rule_fired(scorer, overrides, rule, floor):
    [result] = scorer.score_profiles([low_risk(**overrides)])
    fired = {r["id"]: r for r in result["rules_fired"]}
    assert rule in fired and fired[rule]["description"] and fired[rule]["min_tier"] == floor
    assert result["tier"] == max(result["model_tier"], floor) >= floor


def test_no_floor_fires_for_a_clean_or_a_missing_field(scorer):
    [clean, missing] = scorer.score_profiles([low_risk(), {"enterprise_id": "E-2"}])
    assert clean["rules_fired"] == [] and missing["rules_fired"] == []
    assert clean["tier"] == clean["model_tier"] == 1
    assert {rule.id for rule in load_policy()} >= {"credit_grade_c", "mass_incident_36m", "wage_arrears_10_workers"}


def test_json_request_size_limit_is_413(scorer):
    with pytest.raises(InputError, match="at most 10000 enterprises per request") as caught:
        scorer.score_profiles([{"enterprise_id": str(i)} for i in range(MAX_JSON_ENTERPRISES + 1)])
    assert caught.value.status_code == 413
    with pytest.raises(InputError, match="non-empty list"):
        scorer.score_profiles([])
    with pytest.raises(
        InputError,
        match=re.escape("row 2 is not an object with profile fields (rows count from 1 in the order sent; 2 in all)"),
    ) as caught:
        scorer.score_profiles([low_risk(), "E-2", 3])
    assert [e["row"] for e in caught.value.context["errors"]] == [2, 3]


def profiles_frame(rows: int = 20) -> pd.DataFrame:
    frame = pd.DataFrame(
        [low_risk(f"F{i:03d}", complaints_12m=i % 7, credit_grade="C" if i == 3 else "A") for i in range(rows)]
    )
    return frame


def test_csv_and_parquet_files_score_like_json(scorer):
    frame = profiles_frame()
    expected = scorer.score_profiles(frame.to_dict("records"))
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    for data, name in ((frame.to_csv(index=False).encode(), "in.csv"), (parquet.getvalue(), "in.parquet")):
        table = pd.read_csv(io.BytesIO(scorer.score_table(data, filename=name)), keep_default_na=False)
        assert list(table.columns[:8]) == ["enterprise_id", "tier", "model_tier"] + [f"p_tier_{t}" for t in range(1, 6)]
        assert table["tier"].tolist() == [r["tier"] for r in expected]
        assert table.loc[3, "rules_fired"] == "credit_grade_c"
        assert table["imputed"].eq("").all()


def test_csv_text_cells_accept_true_false_yes_no_and_blank(scorer):
    csv = b"enterprise_id,has_workers_congress,unrectified_order,headcount\nA,yes,FALSE,10\nB,0,true,\nC,,1,7\n"
    table = pd.read_csv(io.BytesIO(scorer.score_table(csv, filename="x.csv")), keep_default_na=False)
    assert table["rules_fired"].tolist() == ["", "unrectified_order", "unrectified_order"]
    assert "headcount" in table.loc[1, "imputed"] and "has_workers_congress" in table.loc[2, "imputed"]


def test_a_file_with_bad_rows_is_rejected_whole_listing_every_bad_row(scorer):
    frame = profiles_frame(200).astype(object)
    bad_rows = [6, 18, 151]  # data rows, counting from 1 below the header: frame rows 5, 17, 150
    frame.loc[5, "headcount"] = -1
    frame.loc[17, "industry"] = "farming"
    frame.loc[150, "share_dispatch_workers"] = "lots"
    with pytest.raises(InputError) as caught:
        scorer.score_table(frame.to_csv(index=False).encode(), filename="bad.csv")
    error = caught.value.to_dict()["error"]
    assert error["field"] == "headcount" and error["row"] == 6 and error["enterprise_id"] == "F005"
    assert error["message"].startswith("enterprise 'F005' (data row 6): headcount must be ≥ 1")
    assert "data rows count from 1 below the header line; 3 problems in all" in error["message"]
    assert error["error_count"] == 3 and [e["row"] for e in error["errors"]] == bad_rows
    assert [e["field"] for e in error["errors"]] == ["headcount", "industry", "share_dispatch_workers"]
    assert "'lots'" in error["errors"][2]["message"]


def test_error_listing_is_capped_but_counts_everything(scorer):
    frame = profiles_frame(300)
    frame["headcount"] = 0
    with pytest.raises(InputError) as caught:
        scorer.score_table(frame.to_csv(index=False).encode(), filename="bad.csv")
    assert caught.value.context["error_count"] == 300 and len(caught.value.context["errors"]) == MAX_LISTED_ERRORS


def test_a_file_over_the_limit_is_413_naming_the_file(scorer, monkeypatch):
    import serving.risk

    data = profiles_frame(5).to_csv(index=False).encode()
    monkeypatch.setattr(serving.risk, "MAX_FILE_BYTES", len(data) - 1)
    with pytest.raises(InputError, match=f"file: is {len(data)} bytes; the limit is {len(data) - 1} bytes") as caught:
        scorer.score_table(data, filename="x.csv")
    assert caught.value.status_code == 413


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (b"", "x.csv", "is empty"),
        (b"PAR1 definitely not parquet", "x.parquet", "could not be read as Parquet"),
        (b"industry\nmining\n", "x.csv", "no enterprise_id column"),
    ],
)
def test_unreadable_files_are_client_errors(scorer, data, name, words):
    with pytest.raises(InputError, match=words):
        scorer.score_table(data, filename=name)


def test_a_tampered_model_refuses_to_load(tmp_path):
    copy = tmp_path / "labor_risk"
    shutil.copytree(MODELS_DIR / "labor_risk", copy)
    with open(copy / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelIntegrityError, match="refuses to load"):
        RiskScorer.load(copy)


def test_batch_results_are_vectorised_and_consistent(scorer):
    frame = profiles_frame(500)
    scores = scorer.score_frame(frame, text_cells=False, reasons=False)
    assert scores.contributions.shape[0] == 0 and len(scores.tier) == 500
    assert (scores.tier >= scores.model_tier).all()
    np.testing.assert_allclose(scores.probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("rows", [9, 9 * 40])  # below and above SMALL_BATCH_ROWS: numpy and pandas paths
def test_category_checks_agree_on_both_paths(scorer, rows):
    from runtime.risk.cells import SMALL_BATCH_ROWS, category_column

    spec = scorer.schema.fields["industry"]
    values = [spec.categories[0], spec.categories[-1], "", None, float("nan"), 1, True, ["a"], "unknown"] * (rows // 9)
    column = pd.Series(values, dtype=object)
    got_values, got_missing, got_wrong = category_column(spec, column)
    assert (len(values) <= SMALL_BATCH_ROWS) is (rows == 9)
    expected_missing = np.array([v is None or v == "" or (isinstance(v, float) and v != v) for v in values])
    expected_known = np.array([isinstance(v, str) and v in spec.categories for v in values])
    assert got_missing.tolist() == expected_missing.tolist()
    assert got_wrong.tolist() == (~expected_known & ~expected_missing).tolist()
    assert got_values.tolist() == [v if known else "" for v, known in zip(values, expected_known)]
