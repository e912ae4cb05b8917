"""The issue's "done when", black-box through HTTP on the whole service: 50 unions covering 2,000 scored
enterprises imported and graded, a union's grade with its factors, one of its enterprises scored into
tier 5, the union's grade rises at the next grading and the enterprise is in the week's review."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from serving.unions.meeting import week_bounds
from tests.serving.test_risk_scorer import low_risk
from training.unions.population import generate_province


@pytest.fixture(scope="module")
def province():
    return generate_province(unions=50, enterprises=2_000, seed=31)


def union_body(row: pd.Series) -> dict:
    body = row.to_dict()
    body["enterprise_ids"] = body["enterprise_ids"].split(";")
    body["parent_id"] = body["parent_id"] or None
    return body


def test_done_when(api, province):
    profiles = province.enterprises.drop(columns=["tier"])
    scored = api.post(
        "/v1/enterprises/score-file",
        files={"file": ("province.csv", profiles.to_csv(index=False).encode(), "text/csv")},
    )
    assert scored.status_code == 200
    tiers = pd.read_csv(io.BytesIO(scored.content)).set_index("enterprise_id")["tier"]

    for _, row in province.unions.iterrows():
        created = api.post("/v1/unions", json=union_body(row))
        assert created.status_code == 201, created.text
    graded = api.post("/v1/unions/grade")
    assert graded.status_code == 200 and graded.json()["unions_graded"] >= 50

    listed = api.get("/v1/unions", params={"limit": 500}).json()["unions"]
    ours = [u for u in listed if u["union_id"] in set(province.unions["union_id"])]
    assert len(ours) == 50 and all(u["grade"] in range(1, 6) for u in ours)
    covered = province.coverage.groupby("union_id")["enterprise_id"].apply(list)
    candidate = next(u for u in ours if u["grade"] < 5 and tiers[covered[u["union_id"]]].max() < 5)
    union = api.get(f"/v1/unions/{candidate['union_id']}").json()
    assert {f["factor"] for f in union["factors"]} >= {"union_type", "highest_tier", "high_tier_share"}
    assert sum(f["points"] for f in union["factors"]) == pytest.approx(union["points"])
    assert union["enterprise_count"] == len(covered[candidate["union_id"]])

    target = next(e for e in covered[candidate["union_id"]] if tiers[e] <= 3)  # newly high: below 4 before
    worse = low_risk(target, mass_incident_36m=2, collective_petition_12m=True)
    answer = api.post("/v1/enterprises/score", json={"enterprises": [worse]}).json()
    assert answer["results"][0]["tier"] == 5
    kept = api.get(f"/v1/enterprises/{target}").json()
    assert kept["latest"]["tier"] == 5 and kept["previous_tier"] == tiers[target]
    assert [h["tier"] for h in kept["history"]] == [5, tiers[target]]
    assert "mass_incident_36m" in kept["latest"]["rules_fired"]

    api.post("/v1/unions/grade")
    after = api.get(f"/v1/unions/{candidate['union_id']}").json()
    assert after["grade"] > candidate["grade"]
    assert after["history"][0]["previous_grade"] == candidate["grade"]

    week, _, _ = week_bounds(None)
    meeting = api.get("/v1/review-meeting", params={"week": week}).json()
    newly = {item["enterprise_id"]: item for item in meeting["newly_high"]}
    assert newly[target]["tier"] == 5 and "mass_incident_36m" in newly[target]["rules_fired"]
    assert candidate["union_id"] in {u["union_id"] for u in newly[target]["unions"]}
    assert candidate["union_id"] in {u["union_id"] for u in meeting["unions_rose"]}
    assert len(meeting["trend"]) == 12 and meeting["trend"][-1]["week"] == week
    assert {row["district"] for row in meeting["by_district"]} >= set(province.unions["district"])


def test_bad_union_bodies_name_the_field(api):
    bad = api.post("/v1/unions", json={"union_id": "X", "name": "x", "union_type": "guild", "district": "d"})
    assert bad.status_code == 422
    fields = [e["field"] for e in bad.json()["error"]["errors"]]
    assert fields == ["union_type", "members"]
    assert api.get("/v1/unions/no-such-union").status_code == 404
    assert api.get("/v1/review-meeting", params={"week": "2026-W60"}).json()["error"]["field"] == "week"
    assert api.get("/v1/unions", params={"grade": 9}).json()["error"]["field"] == "grade"
    assert api.patch("/v1/unions/no-such-union", json={"name": "n"}).status_code == 404
