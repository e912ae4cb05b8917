"""The closed loop through HTTP on the whole service (toy photo model, auth on): one photo from assess to
a closed rectification order, read back by its receipt with no identity, feeding the enterprise's risk."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.serving.conftest import encode_image
from tests.serving.test_auth_api import auth_on

RED, GREY = (255, 0, 0), (128, 128, 128)


@pytest.fixture
def loop(api: TestClient, tmp_path: Path) -> Iterator[tuple[TestClient, dict, str]]:
    """Auth on, one key per role and two enterprise keys bound to enterprises of this test only."""
    enterprise, other = f"E-{uuid.uuid4().hex[:8]}", f"E-{uuid.uuid4().hex[:8]}"
    keys = {
        "intake": "intake-loop-key-3c1e",
        "reviewer": "reviewer-loop-key-9a7d",
        "enterprise": "enterprise-loop-key-51be",
        "other": "enterprise-loop-key-d24f",
    }
    inline = (
        f"intake:{keys['intake']},reviewer:{keys['reviewer']}:officer-wang,"
        f"enterprise:{keys['enterprise']}:{enterprise},enterprise:{keys['other']}:{other}"
    )
    headers = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    with auth_on(api, tmp_path, api_keys=inline) as client:
        yield client, headers, enterprise


def score(api, headers, enterprise: str) -> dict:
    response = api.post(
        "/v1/enterprises/score", json={"enterprises": [{"enterprise_id": enterprise}]}, headers=headers["intake"]
    )
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


def step(api, headers, order_id: str, action: str, **extra) -> dict:
    response = api.post(f"/v1/orders/{order_id}/transitions", json={"action": action, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_one_photo_from_assess_to_closed_order(loop):
    api, headers, enterprise = loop
    assessed = api.post(
        "/v1/photos/assess",
        files={"photo": ("fire.jpg", encode_image(RED), "image/jpeg")},
        data={"site_id": "工地-3号楼", "reporter": "张三 13800000000"},
        headers=headers["intake"],
    )
    assert assessed.status_code == 200, assessed.text
    photo_id, receipt = assessed.json()["photo_id"], assessed.json()["receipt"]
    assert api.get(f"/v1/reports/{receipt}").json()["stage"] == "received"  # no key needed
    assert "photo_hazards" not in score(api, headers, enterprise)  # the store does not know it yet

    confirmed = api.post(f"/v1/review/{photo_id}", json={"decision": "confirm"}, headers=headers["reviewer"])
    assert confirmed.status_code == 201, confirmed.text
    created = api.post(
        "/v1/orders/",
        headers=headers["reviewer"],
        json={
            "photo_id": photo_id,
            "enterprise_id": enterprise,
            "district": "南山区",
            "assignee": "李经理",
            "measures": "清除火源，配置灭火器",
        },
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["state"] == "open" and order["severity"] == "疑似重大" and order["site_id"] == "工地-3号楼"

    before = score(api, headers, enterprise)
    assert before["photo_hazards"] == {"open": 1, "open_major": 1, "source": "rectification orders"}
    assert "open_major_photo_hazard" in [rule["id"] for rule in before["rules_fired"]] and before["tier"] >= 3
    assert "open_photo_hazards" not in before["imputed"]
    assert {"field": "open_major_photo_hazards", "value": 1} in [
        {"field": r["field"], "value": r["value"]} for r in before["reasons"]
    ]

    ours = api.get("/v1/orders/", headers=headers["enterprise"]).json()
    assert [item["id"] for item in ours["items"]] == [order["id"]]
    step(api, headers["enterprise"], order["id"], "start", comment="已安排整改")
    proof = api.post(
        f"/v1/orders/{order['id']}/proof",
        headers=headers["enterprise"],
        data={"comment": "已整改"},
        files={"photo": ("after.jpg", encode_image(GREY), "image/jpeg")},
    )
    assert proof.status_code == 201, proof.text
    comparison = proof.json()["comparison"]
    assert comparison["hazard"] == "fire_smoke" and comparison["before"]["probability"] > 0.5
    assert comparison["after"]["probability"] < 0.5
    assert api.get(comparison["after"]["photo"], headers=headers["reviewer"]).headers["content-type"] == "image/jpeg"
    assert api.get(f"/v1/reports/{receipt}").json()["stage"] == "rectifying"

    step(api, headers["reviewer"], order["id"], "verify", comment="复查合格")
    closed = step(api, headers["reviewer"], order["id"], "close", outcome="隐患已消除")
    assert closed["state"] == "closed" and closed["rectified"] is True

    report = api.get(f"/v1/reports/{receipt}")
    assert report.status_code == 200 and report.json()["stage"] == "closed"
    text = report.text
    for secret in ("张三", "13800000000", "rp_", "工地", enterprise, photo_id, order["id"], "officer-wang", "李经理"):
        assert secret not in text, f"{secret!r} leaked into the receipt answer"

    after = score(api, headers, enterprise)
    assert after["photo_hazards"] == {"open": 0, "open_major": 0, "source": "rectification orders"}
    assert "open_major_photo_hazard" not in [rule["id"] for rule in after["rules_fired"]]
    assert not {"open_photo_hazards", "open_major_photo_hazards"} & {r["field"] for r in after["reasons"]}

    history = api.get(f"/v1/orders/{order['id']}", headers=headers["reviewer"]).json()["history"]
    assert [(entry["action"], entry["to"]) for entry in history] == [
        ("create", "open"),
        ("start", "in_progress"),
        ("submit", "submitted"),
        ("verify", "verified"),
        ("close", "closed"),
    ]
    assert history[3]["actor"].startswith("officer-wang") and history[1]["actor"].startswith(f"enterprise:{enterprise}")
    assert history[2]["details"]["probability_after"] == comparison["after"]["probability"]

    figures = api.get("/v1/orders/dashboard", headers=headers["reviewer"]).json()
    row = next(entry for entry in figures["by"]["enterprise"] if entry["key"] == enterprise)
    assert row == {**row, "orders": 1, "rectified": 1, "unrectified": 0}
    assert enterprise in api.get("/v1/orders/dashboard.csv", headers=headers["reviewer"]).text
    assert enterprise in api.get("/orders/", headers=headers["reviewer"]).text


def test_enterprise_keys_see_only_their_orders_and_never_reporters(loop):
    api, headers, enterprise = loop
    photo = {"photo": ("fire.jpg", encode_image(RED, size=(70, 50)), "image/jpeg")}
    assessed = api.post("/v1/photos/assess", files=photo, data={"reporter": "李四"}, headers=headers["intake"]).json()
    api.post(f"/v1/review/{assessed['photo_id']}", json={"decision": "confirm"}, headers=headers["reviewer"])
    order = api.post(
        "/v1/orders/", headers=headers["reviewer"], json={"photo_id": assessed["photo_id"], "enterprise_id": enterprise}
    ).json()
    pseudonym = assessed["metadata"]["reporter"]
    mine = api.get(f"/v1/orders/{order['id']}", headers=headers["enterprise"])
    assert mine.status_code == 200 and pseudonym not in mine.text and "reporter" not in json.dumps(mine.json())
    assert "photo_id" not in mine.json()
    assert api.get(f"/v1/orders/{order['id']}", headers=headers["other"]).status_code == 404
    assert api.get("/v1/orders/?state=all", headers=headers["other"]).json()["total"] == 0
    assert api.get("/v1/review/queue", headers=headers["enterprise"]).status_code == 403
    assert api.get("/v1/orders/dashboard", headers=headers["enterprise"]).status_code == 403
    refused = api.post(
        f"/v1/orders/{order['id']}/transitions", json={"action": "verify"}, headers=headers["enterprise"]
    )
    assert refused.status_code == 403 and "officers" in refused.json()["error"]["message"]
    wrong = api.post(f"/v1/orders/{order['id']}/transitions", json={"action": "verify"}, headers=headers["reviewer"])
    assert wrong.status_code == 409
    assert wrong.json()["error"] == {
        "field": "action",
        "state": "open",
        "message": "the order is `open`; `verify` needs state `submitted` (from `open` you can start)",
    }
    assert (
        api.post(
            "/v1/orders/",
            headers=headers["enterprise"],
            json={"photo_id": assessed["photo_id"], "enterprise_id": enterprise},
        ).status_code
        == 403
    )
