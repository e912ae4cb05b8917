"""The risk endpoints through `Ankang.to_asgi()`: JSON scoring, file scoring, 4xx errors that name the field."""

from __future__ import annotations

import io

import pandas as pd

from tests.serving.test_risk_scorer import low_risk


def test_score_returns_model_and_one_result_per_enterprise(api):
    response = api.post(
        "/v1/enterprises/score", json={"enterprises": [low_risk("A-1"), low_risk("A-2", credit_grade="C")]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "labor_risk" and body["model"]["version"]
    first, second = body["results"]
    assert first["enterprise_id"] == "A-1" and first["tier"] == first["model_tier"] == 1
    assert set(first) == {"enterprise_id", "tier", "model_tier", "probabilities", "rules_fired", "reasons", "imputed"}
    assert list(first["probabilities"]) == ["1", "2", "3", "4", "5"]
    assert second["tier"] >= 4 and second["rules_fired"][0]["id"] == "credit_grade_c"


def test_bad_value_is_422_naming_field_and_enterprise_and_server_keeps_serving(api):
    response = api.post(
        "/v1/enterprises/score", json={"enterprises": [low_risk("A-1"), low_risk("B-9", headcount="many")]}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "headcount" and error["enterprise_id"] == "B-9" and error["row"] == 2  # 1-based
    assert "headcount must be a whole number, got 'many'" in error["message"]
    assert api.post("/v1/enterprises/score", json={"enterprises": [low_risk()]}).status_code == 200


def test_file_endpoint_answers_csv_for_csv_and_parquet(api):
    frame = pd.DataFrame([low_risk(f"F{i}", mass_incident_36m=int(i == 2)) for i in range(5)])
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    for name, data in (("in.csv", frame.to_csv(index=False).encode()), ("in.parquet", parquet.getvalue())):
        response = api.post("/v1/enterprises/score-file", files={"file": (name, data, "application/octet-stream")})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        table = pd.read_csv(io.BytesIO(response.content), keep_default_na=False)
        assert table["enterprise_id"].tolist() == [f"F{i}" for i in range(5)]
        assert table.loc[2, "tier"] == 5 and table.loc[2, "rules_fired"] == "mass_incident_36m"


def test_file_with_bad_rows_is_422_listing_them(api):
    csv = b"enterprise_id,industry,headcount\nX1,mining,10\nX2,farming,10\nX3,mining,-4\n"
    response = api.post("/v1/enterprises/score-file", files={"file": ("bad.csv", csv, "text/csv")})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["error_count"] == 2 and [e["enterprise_id"] for e in error["errors"]] == ["X2", "X3"]


def test_score_file_size_limit_is_one_setting():
    """The body limit said 64 MiB and the scorer 100 MiB: a 70 MiB file got the body's 413, never the scorer's."""
    from serving.limits import BodySizeLimit
    from serving.risk import MAX_FILE_BYTES, MULTIPART_FRAMING_BYTES
    from serving.service import Ankang

    [limits] = [options for middleware, options in Ankang.middlewares if middleware is BodySizeLimit]
    assert limits["path_limits"]["/v1/enterprises/score-file"] == MAX_FILE_BYTES + MULTIPART_FRAMING_BYTES
