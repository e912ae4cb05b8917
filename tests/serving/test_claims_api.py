"""Workers' claims over HTTP, through the whole service (`api`: Ankang.to_asgi(), auth off unless
switched on): the issue's black-box scenario (40 wage-arrears claims from three channels about one
enterprise), validation, roles, receipts and feedback for claims and photo reports, figures CSV."""

from __future__ import annotations

import csv
import io
import uuid

import bentoml
import pytest

from serving.claims.figures import CachedFigures
from serving.orders.receipts import RateLimiter
from tests.serving.conftest import encode_image
from tests.serving.test_auth_api import ENV_KEYS, KEYS, auth_on, bearer

CHANNELS = ("hotline_12351", "city_platform", "petition_window")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def file_claim(api, enterprise: str, **fields) -> dict:
    body = {
        "channel": "hotline_12351",
        "enterprise_id": enterprise,
        "type": "wage_arrears",
        "workers": 1,
        "amount_cny": 9000,
        "description": "拖欠两个月工资",
        **fields,
    }
    response = api.post("/v1/claims/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(autouse=True)
def figures_waited_for(api, monkeypatch):
    """Figures requests wait for the recomputation after a change (in service they wait 150 ms and
    may answer the previous figures: tests/serving/test_claims_store.py covers that)."""
    monkeypatch.setattr(bentoml.get_current_service().backends, "claim_figures", CachedFigures(wait_seconds=120))


@pytest.fixture
def generous_limits(monkeypatch):
    """Forty workers answer from one test client: the per-address limits are tested on their own."""
    monkeypatch.setattr(bentoml.get_current_service().backends, "receipt_lookups", RateLimiter(limit=10_000))
    monkeypatch.setattr(bentoml.get_current_service().backends, "feedback_limiter", RateLimiter(limit=10_000))


def move(api, case_id: str, **body) -> dict:
    response = api.post(f"/v1/claims/{case_id}/transitions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_forty_wage_arrears_claims_become_one_case_that_feeds_risk_closes_and_is_rated(api, generous_limits):
    enterprise, district = unique("E-ARREARS"), unique("区")
    filed = [
        file_claim(api, enterprise, channel=CHANNELS[index % 3], district=district, claimant=f"工人{index}")
        for index in range(40)
    ]
    assert len({claim["case_id"] for claim in filed}) == 1 and filed[-1]["case"]["workers"] == 40
    assert [claim["rescored"] for claim in filed].index(True) == 9  # the tenth worker makes it mass arrears
    case_id = filed[0]["case_id"]

    queue = api.get("/v1/claims/", params={"enterprise_id": enterprise}).json()
    assert queue["total"] == 1
    (case,) = queue["items"]
    assert (case["claimants"], case["workers"], case["amount_cny"], case["mass"]) == (40, 40, 360000.0, True)
    assert {claim["channel"] for claim in case["claims"]} == set(CHANNELS)
    assert all(claim["claimant"] and "工人" not in claim["claimant"] for claim in case["claims"])  # pseudonyms

    scored = api.post("/v1/enterprises/score", json={"enterprises": [{"enterprise_id": enterprise}]}).json()
    (result,) = scored["results"]
    assert result["claims"]["wage_arrears_workers_12m"] == 40 and result["claims"]["collective_petition_12m"]
    assert result["claims"]["wage_arrears_amount_12m"] == 360000.0 and result["claims"]["complaints_12m"] == 40
    assert "wage_arrears_workers_12m" in result["claims"]["filled"]
    assert result["tier"] >= 4 and result["supervision"]["opened"] is False  # opened when the claims came in
    kept = api.get(f"/v1/enterprises/{enterprise}").json()["history"]
    assert {"claims", "api"} <= {score["source"] for score in kept}  # the rescores are kept like any score
    supervision = api.get(f"/v1/orders/{result['supervision']['order_id']}").json()
    assert supervision["kind"] == "supervision" and supervision["enterprise_id"] == enterprise

    given = api.post(
        "/v1/enterprises/score", json={"enterprises": [{"enterprise_id": enterprise, "complaints_12m": 3}]}
    ).json()["results"][0]
    assert "complaints_12m" not in given["claims"]["filled"]  # what the caller says is kept

    move(api, case_id, action="dispatch", handler="labour_inspection")
    move(api, case_id, action="handle", comment="责令限期支付")
    closed = move(api, case_id, action="close", outcome="recovered", recovered_cny=360000)
    assert closed["state"] == "closed" and closed["outcome"]["recovered_cny"] == 360000

    status = api.get(f"/v1/reports/{filed[0]['receipt']}").json()
    assert [event["event"] for event in status["timeline"]] == ["accept", "dispatch", "handle", "close"]
    assert status["timeline"][1]["handler"]["name_zh"] == "人社劳动保障监察" and status["feedback"]["open"]
    for claim in filed[:39]:
        answer = api.post(f"/v1/reports/{claim['receipt']}/feedback", json={"satisfied": 5, "resolved": True})
        assert answer.status_code == 201, answer.text
    figures = api.get("/v1/claims/figures").json()
    by_district = {entry["key"]: entry for entry in figures["by"]["district"]}[district]
    assert (by_district["closing_rate"], by_district["satisfaction_rate"], by_district["ratings"]) == (1.0, 1.0, 39)

    unresolved = api.post(
        f"/v1/reports/{filed[39]['receipt']}/feedback",
        json={"satisfied": 2, "resolved": False, "comment": "只发了一半"},
    )
    assert unresolved.status_code == 201 and unresolved.json()["action"] == "reopened"
    reopened = api.get(f"/v1/claims/{case_id}").json()
    assert reopened["state"] == "accepted" and reopened["reopen_count"] == 1
    assert reopened["history"][-1]["action"] == "reopen"
    figures = api.get("/v1/claims/figures").json()
    by_district = {entry["key"]: entry for entry in figures["by"]["district"]}[district]
    assert by_district["closing_rate"] == 0.0 and by_district["satisfaction_rate"] == 0.975
    assert "只发了一半" not in str(api.get(f"/v1/reports/{filed[39]['receipt']}").json())
    ratings = reopened["feedback"]  # officers read every rating, comments included
    assert len(ratings) == 40 and ratings[-1]["comment"] == "只发了一半" and not ratings[-1]["resolved"]
    page = api.get("/claims/figures")
    assert page.status_code == 200 and f"{figures['closing_rate'] * 100:.1f}%" in page.text
    assert f"{figures['satisfaction_rate'] * 100:.1f}%" in page.text


@pytest.mark.parametrize(
    ("body", "status", "fields"),
    [
        (b"{not json", 400, ["body"]),
        (b"[]", 422, ["body"]),
        (b'{"channel": "fax", "workers": -1}', 422, ["channel", "enterprise_id", "type", "workers", "description"]),
        (
            b'{"channel": "walk_in", "enterprise_id": "E", "type": "other", "description": "x", "amount_cny": "many"}',
            422,
            ["amount_cny"],
        ),
    ],
)
def test_bad_claims_name_every_field_at_once(api, body, status, fields):
    response = api.post("/v1/claims/", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["field"] == fields[0]
    assert [e["field"] for e in error.get("errors", [error])] == fields


def test_transitions_refuse_wrong_states_and_unknown_handlers(api):
    case_id = file_claim(api, unique("E"))["case_id"]
    wrong = api.post(f"/v1/claims/{case_id}/transitions", json={"action": "close", "outcome": "recovered"})
    assert wrong.status_code == 409 and wrong.json()["error"]["state"] == "accepted"
    unknown = api.post(f"/v1/claims/{case_id}/transitions", json={"action": "dispatch", "handler": "police"})
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "handler"
    listed = api.post(f"/v1/claims/{case_id}/transitions", json={"action": []})  # not a name: no 500
    assert listed.status_code == 422 and [e["field"] for e in listed.json()["error"]["errors"]] == ["action"]
    assert api.get("/v1/claims/nope").status_code == 404
    assert api.get("/v1/claims/", params={"state": "lost"}).json()["error"]["field"] == "state"


def test_merge_and_split_over_http(api):
    enterprise = unique("E")
    a = file_claim(api, enterprise, workers=2)
    b = file_claim(api, enterprise, type="dismissal", workers=3)
    merged = api.post(f"/v1/claims/{b['case_id']}/merge", json={"into": a["case_id"]})
    assert merged.status_code == 200 and merged.json()["workers"] == 5
    split = api.post(f"/v1/claims/{a['case_id']}/split", json={"claim_ids": [b["claim_id"]]})
    assert split.status_code == 200 and split.json()["new_case"]["workers"] == 3
    assert api.post(f"/v1/claims/{a['case_id']}/split", json={"claim_ids": "x"}).status_code == 422


def test_roles_file_read_and_scope(api, tmp_path):
    enterprise = unique("E")
    keys = f"{ENV_KEYS},enterprise:ent-key-1234567890:{enterprise},informant:inf-key-1234567890:李信息员"
    body = {"channel": "hotline_12351", "enterprise_id": enterprise, "type": "wage_arrears", "description": "x"}
    with auth_on(api, tmp_path, api_keys=keys) as client:
        enterprise_key = {"Authorization": "Bearer ent-key-1234567890"}
        informant_key = {"Authorization": "Bearer inf-key-1234567890"}
        filed = client.post("/v1/claims/", json=body, headers=bearer("intake"))
        assert filed.status_code == 201
        case_id = filed.json()["case_id"]
        assert (
            client.post("/v1/claims/", json={**body, "channel": "informant"}, headers=bearer("intake")).status_code
            == 403
        )
        assert client.post("/v1/claims/", json=body, headers=informant_key).status_code == 403
        assert (
            client.post("/v1/claims/", json={**body, "channel": "informant"}, headers=informant_key).status_code == 201
        )
        assert client.post("/v1/claims/", json=body, headers=enterprise_key).status_code == 403
        assert client.get("/v1/claims/", headers=bearer("intake")).status_code == 403
        assert client.get("/v1/claims/").status_code == 401
        assert client.get(f"/v1/claims/{case_id}", headers=enterprise_key).status_code == 404  # not dispatched to it
        dispatch = {"action": "dispatch", "handler": "enterprise_union"}
        assert (
            client.post(f"/v1/claims/{case_id}/transitions", json=dispatch, headers=enterprise_key).status_code == 403
        )
        assert (
            client.post(f"/v1/claims/{case_id}/transitions", json=dispatch, headers=bearer("reviewer")).status_code
            == 201
        )
        seen = client.get(f"/v1/claims/{case_id}", headers=enterprise_key).json()
        assert seen["claimants"] == 2 and "claims" not in seen and "key:" not in str(seen["history"])
        assert "李信息员" not in str(seen) and "informant" not in str(seen) and "feedback" not in seen
        assert client.get("/v1/claims/", headers=enterprise_key).json()["total"] == 1
        assert client.get("/v1/claims/figures", headers=enterprise_key).status_code == 403
        assert client.get("/v1/claims/figures", headers=bearer("reviewer")).status_code == 200


def test_feedback_is_rate_limited_and_checked(api, monkeypatch):
    claim = file_claim(api, unique("E"))
    bad = api.post(f"/v1/reports/{claim['receipt']}/feedback", json={"satisfied": 9, "comment": "x" * 600})
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["error"]["errors"]] == [
        "satisfied",
        "resolved",
        "comment",
    ]
    early = api.post(f"/v1/reports/{claim['receipt']}/feedback", json={"satisfied": 5, "resolved": True})
    assert early.status_code == 409
    assert (
        api.post(
            "/v1/reports/AAAA-BBBB-CCCC-DDDD-EEEE-FFFF/feedback", json={"satisfied": 5, "resolved": True}
        ).status_code
        == 404
    )
    monkeypatch.setattr(bentoml.get_current_service().backends, "feedback_limiter", RateLimiter(limit=1))
    api.post(f"/v1/reports/{claim['receipt']}/feedback", json={"satisfied": 5, "resolved": True})
    limited = api.post(f"/v1/reports/{claim['receipt']}/feedback", json={"satisfied": 5, "resolved": True})
    assert limited.status_code == 429


def test_a_photo_report_shows_a_timeline_and_its_reporter_can_reopen_the_order(api, generous_limits):
    assessed = api.post("/v1/photos/assess", files={"photo": ("f.jpg", encode_image((0, 0, 255)), "image/jpeg")}).json()
    receipt, photo_id = assessed["receipt"], assessed["photo_id"]
    assert api.get(f"/v1/reports/{receipt}").json()["timeline"][0]["event"] == "received"
    api.post(f"/v1/review/{photo_id}", json={"decision": "confirm"})
    order = api.post("/v1/orders/", json={"photo_id": photo_id, "enterprise_id": unique("E")}).json()
    api.post(f"/v1/orders/{order['id']}/transitions", json={"action": "start"})
    api.post(f"/v1/orders/{order['id']}/proof", files={"photo": ("p.jpg", encode_image((0, 255, 0)), "image/jpeg")})
    api.post(f"/v1/orders/{order['id']}/transitions", json={"action": "verify"})
    status = api.get(f"/v1/reports/{receipt}").json()
    assert [e["event"] for e in status["timeline"]][-4:] == ["create", "start", "submit", "verify"]
    assert status["feedback"]["open"]
    answer = api.post(f"/v1/reports/{receipt}/feedback", json={"satisfied": 1, "resolved": False})
    assert answer.status_code == 201 and answer.json()["action"] == "reopened"
    reopened = api.get(f"/v1/orders/{order['id']}").json()
    assert reopened["state"] == "in_progress" and reopened["history"][-1]["action"] == "reopen"
    assert reopened["feedback"] == [
        {
            "round": 0,
            "satisfied": 1,
            "resolved": False,
            "comment": None,
            "created_at": reopened["feedback"][0]["created_at"],
        }
    ]


def test_figures_csv_is_formula_safe(api):
    file_claim(api, unique("E"), district='=HYPERLINK("http://x")')
    response = api.get("/v1/claims/figures.csv")
    assert response.status_code == 200 and response.text.startswith("dimension,key,claims,closed,closing_rate")
    cells = [cell for row in csv.reader(io.StringIO(response.text)) for cell in row]
    assert '\'=HYPERLINK("http://x")' in cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)


def test_the_informant_role_is_a_personal_key():
    from serving.auth import new_key

    with pytest.raises(ValueError):
        new_key(role="informant")
    assert new_key(role="informant", holder="李信息员")[1].role == "informant"
    assert KEYS  # the shared keys still cover intake, reviewer and admin
