"""The order API's answers to bad requests, the overdue list and escalation, supervision from risk
scoring, the receipt lookup's rate limit, and the enterprise role in serving/auth.py."""

from __future__ import annotations

import uuid

import bentoml
import pytest

from serving.auth import new_key, parse_env_keys, required_role, role_allows
from serving.orders.receipts import RateLimiter
from tests.serving.conftest import encode_image

OFFICER: dict[str, str] = {}  # auth is off in the `api` fixture: every request is an officer


def confirmed_order(api, enterprise: str, **fields) -> dict:
    photo_id = api.post(
        "/v1/photos/assess", files={"photo": ("f.jpg", encode_image((0, 0, 255)), "image/jpeg")}
    ).json()["photo_id"]
    assert api.post(f"/v1/review/{photo_id}", json={"decision": "confirm"}, headers=OFFICER).status_code == 201
    response = api.post(
        "/v1/orders/", json={"photo_id": photo_id, "enterprise_id": enterprise, **fields}, headers=OFFICER
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        (b"{not json", 400, "body", "the body is not valid JSON"),
        (b"[]", 422, "body", "send a JSON object such as"),
        (b"", 422, "body", "send a JSON object such as"),  # no body at all
        (
            b'{"action": "finish"}',
            422,
            "action",
            "unknown action 'finish'; use one of ['start', 'submit', 'verify', 'reject', 'close']",
        ),
        (b'{"action": "start", "comment": 5}', 422, "comment", "comment must be text of at most 4000 characters"),
        (b'{"action": []}', 422, "action", "unknown action []; use one of"),  # was a 500
    ],
)
def test_bad_transition_bodies_name_the_field(api, body, status, field, message):
    order = confirmed_order(api, f"E-{uuid.uuid4().hex[:6]}")
    response = api.post(f"/v1/orders/{order['id']}/transitions", content=body, headers=OFFICER)
    assert response.status_code == status
    assert response.json()["error"]["field"] == field and response.json()["error"]["message"].startswith(message)


def test_creating_an_order_checks_its_fields(api):
    response = api.post("/v1/orders/", json={"enterprise_id": "E1"}, headers=OFFICER)
    assert response.status_code == 422
    assert response.json()["error"] == {"field": "photo_id", "message": "`photo_id` is required"}
    response = api.post(
        "/v1/orders/", json={"photo_id": "x", "enterprise_id": "E1", "due_at": "tomorrow"}, headers=OFFICER
    )
    assert response.json()["error"]["message"] == "'tomorrow' is not a time; use ISO 8601, e.g. 2026-12-09T17:00:00Z"
    assert api.post("/v1/orders/", json={"photo_id": "nope", "enterprise_id": "E1"}, headers=OFFICER).status_code == 404


def test_proof_needs_a_photo_and_an_order_in_progress(api):
    order = confirmed_order(api, f"E-{uuid.uuid4().hex[:6]}")
    photo = {"photo": ("p.jpg", encode_image((1, 2, 3)), "image/jpeg")}
    early = api.post(f"/v1/orders/{order['id']}/proof", files=photo, headers=OFFICER)
    assert early.status_code == 409 and early.json()["error"]["state"] == "open"
    api.post(f"/v1/orders/{order['id']}/transitions", json={"action": "start"}, headers=OFFICER)
    missing = api.post(f"/v1/orders/{order['id']}/proof", data={"comment": "x"}, headers=OFFICER)
    assert (
        missing.status_code == 422
        and missing.json()["error"]["message"] == "send the proof photo as the multipart file field `photo`"
    )
    broken = api.post(
        f"/v1/orders/{order['id']}/proof", files={"photo": ("p.jpg", b"not an image", "image/jpeg")}, headers=OFFICER
    )
    assert broken.status_code == 415 and broken.json()["error"]["field"] == "photo"
    assert api.get(f"/v1/orders/{order['id']}").json()["state"] == "in_progress"  # nothing half-written


def test_overdue_list_escalation_and_amendment_over_http(api):
    enterprise = f"E-{uuid.uuid4().hex[:6]}"
    order = confirmed_order(api, enterprise, due_at="2026-01-01T00:00:00Z")
    overdue = api.get("/v1/orders/overdue", params={"enterprise_id": enterprise}).json()
    assert [(item["id"], item["overdue"]) for item in overdue["items"]] == [(order["id"], True)]
    escalated = api.post("/v1/orders/escalate", headers=OFFICER).json()["escalated"]
    assert {
        "order_id": order["id"],
        "level": {
            "level": 3,
            "id": "district_federation",
            "name_zh": "区总工会",
            "name_en": "district federation of trade unions",
        },
    } in escalated
    moved = api.patch(
        f"/v1/orders/{order['id']}", json={"due_at": "2099-01-01T00:00:00Z", "comment": "延期"}, headers=OFFICER
    )
    assert moved.status_code == 200 and moved.json()["overdue"] is False
    refused = api.patch(f"/v1/orders/{order['id']}", json={"state": "closed"}, headers=OFFICER)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "state"
    assert [entry["action"] for entry in api.get(f"/v1/orders/{order['id']}").json()["history"]] == [
        "create",
        "escalate",
        "amend",
    ]
    bad = api.get("/v1/orders/", params={"state": "done"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "state"


def test_scoring_a_high_tier_enterprise_opens_one_supervision_case(api):
    enterprise = f"S-{uuid.uuid4().hex[:6]}"
    profile = {"enterprise_id": enterprise, "mass_incident_36m": 1}  # policy floor: tier 5
    first = api.post("/v1/enterprises/score", json={"enterprises": [profile]}).json()["results"][0]
    assert first["tier"] == 5 and first["supervision"]["opened"] is True
    again = api.post("/v1/enterprises/score", json={"enterprises": [profile]}).json()["results"][0]
    assert again["supervision"] == {**first["supervision"], "opened": False}
    case = api.get(f"/v1/orders/{first['supervision']['order_id']}").json()
    assert (case["kind"], case["risk_tier"], case["state"]) == ("supervision", 5, "open")


def test_receipt_lookups_are_rate_limited_per_address(api, monkeypatch):
    monkeypatch.setattr(bentoml.get_current_service().backends, "receipt_lookups", RateLimiter(limit=2, window=60))
    photo = {"photo": ("f.jpg", encode_image((9, 9, 9)), "image/jpeg")}
    code = api.post("/v1/photos/assess", files=photo).json()["receipt"]
    assert [api.get(f"/v1/reports/{code}").status_code for _ in range(3)] == [200, 200, 429]
    assert api.get("/v1/reports/AAAA-BBBB").status_code == 429  # guesses count too


def test_enterprise_role_in_auth():
    key, record = parse_env_keys("enterprise:secret-abc:E-9,reviewer:r-key")
    assert (key.role, key.enterprise_id, key.principal().enterprise_id) == ("enterprise", "E-9", "E-9")
    assert record.principal().enterprise_id is None
    with pytest.raises(ValueError, match="ANKANG_API_KEYS entry 1 is not `enterprise:key:ENTERPRISE_ID`"):
        parse_env_keys("enterprise:secret-only")
    with pytest.raises(ValueError, match="an enterprise key needs --enterprise-id"):
        new_key(role="enterprise")
    assert new_key(role="enterprise", enterprise_id="E-1")[1].enterprise_id == "E-1"
    assert required_role("/v1/reports/ABCD") is None and required_role("/v1/orders/x") == "enterprise"
    assert required_role("/orders/") == "enterprise"  # the pages tell officers and enterprises apart
    assert role_allows("reviewer", "enterprise") and role_allows("enterprise", "enterprise")
    assert not role_allows("enterprise", "reviewer") and not role_allows("intake", "enterprise")


def test_keys_create_binds_an_enterprise_key_that_the_service_accepts(capsys, tmp_path, monkeypatch):
    from ankang_cli import main as ankang
    from serving.auth import KeyStore
    from serving.settings import ServingSettings

    monkeypatch.delenv("ANKANG_DATABASE_URL", raising=False)
    monkeypatch.setenv("ANKANG_DATA_DIR", str(tmp_path))
    assert ankang(["keys", "create", "--role", "enterprise"]) == 2
    assert "an enterprise key needs --enterprise-id" in capsys.readouterr().err
    assert ankang(["keys", "create", "--role", "enterprise", "--enterprise-id", "E-77"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    principal = KeyStore.from_settings(ServingSettings(data_dir=tmp_path)).authenticate(key)
    assert (principal.role, principal.enterprise_id) == ("enterprise", "E-77")


def test_a_malformed_proof_body_is_400_naming_the_photo(api):
    order = confirmed_order(api, f"E-{uuid.uuid4().hex[:6]}")
    api.post(f"/v1/orders/{order['id']}/transitions", json={"action": "start"}, headers=OFFICER)
    response = api.post(
        f"/v1/orders/{order['id']}/proof",
        content=b"--x\r\nbroken",
        headers={**OFFICER, "content-type": "multipart/form-data"},
    )  # no boundary
    assert response.status_code == 400 and response.json()["error"]["field"] == "photo"


def test_sign_in_may_send_an_officer_back_to_an_order_page_and_nowhere_else():
    from serving.auth.sign_in import safe_next

    assert safe_next("/orders/") == "/orders/" and safe_next("/orders/0a1b2c") == "/orders/0a1b2c"
    assert [safe_next(path) for path in ("/ordersx", "/orders/../v1/admin", "//evil.example/orders")] == ["/review"] * 3


def test_unknown_report_paths_say_how_to_look_a_report_up(api):
    for response in (api.get("/v1/reports/ABCD/history"), api.post("/v1/reports/ABCD")):
        assert response.status_code in (404, 405)
        assert response.json()["error"] == {
            "field": "receipt",
            "message": "look a report up with GET /v1/reports/{receipt code}; "
            "answer a closed one with POST /v1/reports/{receipt code}/feedback",
        }
