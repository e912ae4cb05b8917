"""/docs and /docs.json: Ankang's own document, typed for every route, and real answers that match it
(schemathesis checks each response: status documented, media type, body schema) (issue 14.3)."""

from __future__ import annotations

import io
import uuid

import bentoml
import pytest
import schemathesis

from serving.auth import required_role
from serving.orders.receipts import RateLimiter
from tests.serving.conftest import encode_image
from tests.serving.test_auth_api import (
    ENV_KEYS,
    auth_on,
    bearer,
    secured,  # noqa: F401  (fixture: the same app with keys and roles on)
)
from tests.serving.test_risk_scorer import low_risk

RED = (255, 0, 0)
ENTERPRISE_KEY = "enterprise-key-3c9e1a7b5d"


@pytest.fixture(scope="module")
def spec(api) -> dict:
    return api.get("/docs.json").json()


@pytest.fixture(scope="module")
def schema(spec):
    """Checks one real response: its status is documented for the route, and its media type and body
    match what the document says of that status (schemathesis)."""
    loaded = schemathesis.openapi.from_dict(spec)

    class Checker:
        def __getitem__(self, path: str):
            return {
                method.upper(): _Operation(spec["paths"][path][method.lower()], loaded[path][method])
                for method in spec["paths"][path]
            }

    return Checker()


class _Operation:
    def __init__(self, documented: dict, operation):
        self.documented, self.operation = documented, operation

    def validate_response(self, response) -> None:
        assert str(response.status_code) in self.documented["responses"], (
            f"{response.status_code} is not documented: {sorted(self.documented['responses'])}"
        )
        response.request.read()  # schemathesis copies the request; an upload's body is a stream until read
        self.operation.validate_response(response)


def conforms(schema, path: str, method: str, response) -> None:
    schema[path][method].validate_response(response)


def photo(data: bytes = b"", **form: str) -> dict:
    return {"files": {"photo": ("p.jpg", data or encode_image(RED), "image/jpeg")}, "data": form}


def test_the_document_is_ankangs_with_a_bearer_scheme(spec):
    assert spec["info"]["title"] == "Ankang API (安康)"
    assert spec["info"]["version"] and spec["info"]["version"] != "None"
    assert "BentoML" not in str(spec["info"]) and "contact" not in spec["info"]
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key: `Authorization: Bearer KEY`",
    }


def test_every_protected_route_has_security_typed_answers_and_auth_errors(spec):
    review = [path for path in spec["paths"] if path.startswith("/v1/review/")]
    assert {"/v1/review/queue", "/v1/review/{photo_id}", "/v1/review/{photo_id}/heatmap/{hazard}"} <= set(review)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if required_role(path) is None:  # what the auth middleware really leaves open
                assert operation["security"] == [], path
                continue
            assert operation["security"] == [{"bearer": []}, {"apiKey": []}], path
            assert {"401", "403"} <= set(operation["responses"]), (path, method)
            ok = next(body for status, body in operation["responses"].items() if status.startswith("2"))
            media = ok["content"]
            if "application/json" in media:
                assert set(media["application/json"]["schema"]) == {"$ref"}, (path, method)
    photo_errors = set(spec["paths"]["/v1/photos/assess"]["post"]["responses"])
    assert {"400", "413", "415", "422", "503"} <= photo_errors


def test_the_order_and_receipt_routes_are_documented(spec):
    methods = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert {
        ("/v1/orders/", "get"),
        ("/v1/orders/", "post"),
        ("/v1/orders/overdue", "get"),
        ("/v1/orders/supervision", "post"),
        ("/v1/orders/escalate", "post"),
        ("/v1/orders/dashboard", "get"),
        ("/v1/orders/dashboard.csv", "get"),
        ("/v1/orders/{order_id}", "get"),
        ("/v1/orders/{order_id}", "patch"),
        ("/v1/orders/{order_id}/transitions", "post"),
        ("/v1/orders/{order_id}/proof", "post"),
        ("/v1/orders/{order_id}/photos/{which}", "get"),
        ("/v1/reports/{receipt}", "get"),
    } <= methods
    paths = spec["paths"]
    assert "409" in paths["/v1/orders/{order_id}/transitions"]["post"]["responses"]
    assert set(paths["/v1/reports/{receipt}"]["get"]["responses"]) == {"200", "404", "429", "503"}
    proof = paths["/v1/orders/{order_id}/proof"]["post"]["requestBody"]["content"]
    form = spec["components"]["schemas"][proof["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert form["properties"]["photo"]["format"] == "binary" and form["required"] == ["photo"]
    assert {"orders", "reports"} <= {tag["name"] for tag in spec["tags"]}
    assert "/v1/orders" in spec["info"]["description"] and "/v1/reports/{receipt}" in spec["info"]["description"]


def test_photo_answers_match_the_document(api, schema, monkeypatch):
    ok = api.post("/v1/photos/assess", **photo(site_id="s-1", note="by the gate"))
    assert ok.status_code == 200
    for response in (
        ok,
        api.post("/v1/photos/assess", files={"image": ("p.jpg", b"x", "image/jpeg")}),
        api.post("/v1/photos/assess", **photo(b"%PDF-1.7")),
        api.post("/v1/photos/assess", **photo(encode_image(RED, size=(400, 300))[:900])),
        api.post("/v1/photos/assess", **photo(b"\xff\xd8\xff" + b"0" * (17 * 1024 * 1024))),
    ):
        conforms(schema, "/v1/photos/assess", "POST", response)
    from serving.batching import MicroBatcher, QueueFull

    async def full(self, image):
        raise QueueFull("256 photos are already waiting for the model")

    monkeypatch.setattr(MicroBatcher, "submit", full)
    busy = api.post("/v1/photos/assess", **photo())
    assert busy.status_code == 503
    conforms(schema, "/v1/photos/assess", "POST", busy)


def test_enterprise_and_admin_answers_match_the_document(api, schema):
    scored = api.post(
        "/v1/enterprises/score", json={"enterprises": [low_risk("A-1"), low_risk("A-2", credit_grade="C")]}
    )
    bad = api.post("/v1/enterprises/score", json={"enterprises": [low_risk("B-9", headcount="many")]})
    assert (scored.status_code, bad.status_code) == (200, 422)
    for response in (scored, bad):
        conforms(schema, "/v1/enterprises/score", "POST", response)
    csv = b"enterprise_id,headcount\nA-1,30\n"
    table = api.post("/v1/enterprises/score-file", files={"file": ("e.csv", io.BytesIO(csv), "text/csv")})
    empty = api.post("/v1/enterprises/score-file", files={"file": ("e.csv", b"", "text/csv")})
    assert (table.status_code, empty.status_code) == (200, 422)
    for response in (table, empty):
        conforms(schema, "/v1/enterprises/score-file", "POST", response)
    conforms(schema, "/v1/admin/reload", "POST", api.post("/v1/admin/reload", json={}))


def test_review_answers_match_the_document(api, schema):
    photo_id = api.post("/v1/photos/assess", **photo()).json()["photo_id"]
    answers = {
        ("/v1/review/queue", "GET"): [
            api.get("/v1/review/queue", params={"status": "all"}),
            api.get("/v1/review/queue", params={"status": "nonsense"}),
        ],
        ("/v1/review/taxonomy", "GET"): [api.get("/v1/review/taxonomy")],
        ("/v1/review/{photo_id}", "GET"): [api.get("/v1/review/" + "0" * 32)],
        ("/v1/review/{photo_id}", "POST"): [
            api.post(f"/v1/review/{photo_id}", json={"decision": "confirm", "comment": "seen"}),
            api.post(f"/v1/review/{photo_id}", json={"decision": "maybe"}),
            api.post(f"/v1/review/{photo_id}", content=b"{"),
        ],
        ("/v1/review/{photo_id}/thumb", "GET"): [api.get(f"/v1/review/{photo_id}/thumb")],
        ("/v1/review/{photo_id}/heatmap/{hazard}", "GET"): [
            api.get(f"/v1/review/{photo_id}/heatmap/fire_smoke"),
            api.get(f"/v1/review/{photo_id}/heatmap/nothing"),
        ],
    }
    assert [r.status_code for r in answers[("/v1/review/{photo_id}", "POST")]] == [201, 422, 400]
    decided = api.get(f"/v1/review/{photo_id}")  # with its decision in the history
    assert decided.json()["history"]
    answers[("/v1/review/{photo_id}", "GET")].append(decided)
    for (path, method), responses in answers.items():
        for response in responses:
            conforms(schema, path, method, response)


def confirmed_case(api) -> str:
    photo_id = api.post("/v1/photos/assess", **photo()).json()["photo_id"]
    assert api.post(f"/v1/review/{photo_id}", json={"decision": "confirm"}).status_code == 201
    return photo_id


def new_order(api, enterprise: str, **fields):
    response = api.post("/v1/orders/", json={"photo_id": confirmed_case(api), "enterprise_id": enterprise, **fields})
    assert response.status_code == 201, response.text
    return response


def check_all(schema, answers: dict) -> None:
    for (path, method), responses in answers.items():
        for response in responses:
            conforms(schema, path, method, response)


def documented_fields(spec, model: str) -> set[str]:
    return set(spec["components"]["schemas"][model]["properties"])


def test_order_answers_match_the_document(api, schema, spec):
    enterprise = f"E-{uuid.uuid4().hex[:6]}"
    created = new_order(api, enterprise, assignee="王工", due_at="2026-01-01T00:00:00Z")
    order_id = created.json()["id"]
    unreviewed = api.post("/v1/photos/assess", **photo()).json()["photo_id"]
    answers = {
        ("/v1/orders/", "POST"): [
            created,
            api.post("/v1/orders/", json={"enterprise_id": enterprise}),
            api.post("/v1/orders/", json={"photo_id": "0" * 32, "enterprise_id": enterprise}),
            api.post("/v1/orders/", json={"photo_id": unreviewed, "enterprise_id": enterprise}),
            api.post("/v1/orders/", content=b"{"),
        ],
        ("/v1/orders/", "GET"): [
            api.get("/v1/orders/", params={"state": "all", "enterprise_id": enterprise}),
            api.get("/v1/orders/", params={"state": "done"}),
        ],
        ("/v1/orders/overdue", "GET"): [api.get("/v1/orders/overdue", params={"enterprise_id": enterprise})],
        ("/v1/orders/escalate", "POST"): [api.post("/v1/orders/escalate")],
        ("/v1/orders/{order_id}", "GET"): [api.get("/v1/orders/" + "f" * 32)],
        ("/v1/orders/{order_id}", "PATCH"): [
            api.patch(f"/v1/orders/{order_id}", json={"due_at": "2099-01-01T00:00:00Z", "comment": "延期"}),
            api.patch(f"/v1/orders/{order_id}", json={"state": "closed"}),
        ],
        ("/v1/orders/{order_id}/transitions", "POST"): [
            api.post(f"/v1/orders/{order_id}/transitions", json={"action": "verify"}),
            api.post(f"/v1/orders/{order_id}/transitions", json={"action": "finish"}),
            api.post(f"/v1/orders/{order_id}/transitions", json={"action": "start", "comment": "on it"}),
        ],
    }
    statuses = {key: [r.status_code for r in responses] for key, responses in answers.items()}
    assert statuses[("/v1/orders/", "POST")] == [201, 422, 404, 409, 400]
    assert statuses[("/v1/orders/{order_id}/transitions", "POST")] == [409, 422, 201]
    assert statuses[("/v1/orders/{order_id}", "PATCH")] == [200, 422]
    assert answers[("/v1/orders/escalate", "POST")][0].json()["escalated"]  # the order was overdue
    check_all(schema, answers)
    listed = answers[("/v1/orders/", "GET")][0].json()["items"]
    assert [item["id"] for item in listed] == [order_id]
    assert set(listed[0]) == documented_fields(spec, "Order")  # no field the document leaves out


def test_proof_photo_and_history_answers_match_the_document(api, schema, spec):
    order_id = new_order(api, f"E-{uuid.uuid4().hex[:6]}").json()["id"]
    assert api.post(f"/v1/orders/{order_id}/transitions", json={"action": "start"}).status_code == 201
    broken = api.post(f"/v1/orders/{order_id}/proof", **photo(b"not an image"))
    after = encode_image((128, 128, 128), size=(96, 72))  # the original itself is refused as proof
    proof = api.post(f"/v1/orders/{order_id}/proof", **photo(after, comment="fixed the rail"))
    assert proof.status_code == 201, proof.text
    answers = {
        ("/v1/orders/{order_id}/proof", "POST"): [
            broken,
            proof,
            api.post(f"/v1/orders/{order_id}/proof", **photo()),  # submitted already
            api.post("/v1/orders/" + "f" * 32 + "/proof", **photo()),
        ],
        ("/v1/orders/{order_id}/photos/{which}", "GET"): [
            api.get(f"/v1/orders/{order_id}/photos/proof"),
            api.get(f"/v1/orders/{order_id}/photos/original"),
            api.get(f"/v1/orders/{order_id}/photos/nothing"),
        ],
        ("/v1/orders/{order_id}/transitions", "POST"): [
            api.post(f"/v1/orders/{order_id}/transitions", json={"action": "verify"}),
            api.post(f"/v1/orders/{order_id}/transitions", json={"action": "close", "outcome": "done"}),
        ],
        ("/v1/orders/{order_id}", "GET"): [api.get(f"/v1/orders/{order_id}")],
    }
    statuses = {key: [r.status_code for r in responses] for key, responses in answers.items()}
    assert statuses[("/v1/orders/{order_id}/proof", "POST")] == [415, 201, 409, 404]
    assert statuses[("/v1/orders/{order_id}/photos/{which}", "GET")] == [200, 200, 404]
    assert statuses[("/v1/orders/{order_id}/transitions", "POST")] == [201, 201]
    check_all(schema, answers)
    detail = answers[("/v1/orders/{order_id}", "GET")][0].json()
    assert [entry["action"] for entry in detail["history"]] == ["create", "start", "submit", "verify", "close"]
    assert detail["comparison"]["after"] is not None and detail["closed_at"] is not None
    assert set(detail) == documented_fields(spec, "OrderDetail")
    assert set(detail["history"][2]) == documented_fields(spec, "OrderTransition")


def test_supervision_and_dashboard_answers_match_the_document(api, schema, spec):
    enterprise = f"S-{uuid.uuid4().hex[:6]}"
    body = {"enterprise_id": enterprise, "risk_tier": 5, "notes": "three strikes in a year"}
    answers = {
        ("/v1/orders/supervision", "POST"): [
            api.post("/v1/orders/supervision", json=body),
            api.post("/v1/orders/supervision", json=body),
            api.post("/v1/orders/supervision", json={**body, "risk_tier": 2}),
        ],
        ("/v1/orders/dashboard", "GET"): [api.get("/v1/orders/dashboard")],
        ("/v1/orders/dashboard.csv", "GET"): [api.get("/v1/orders/dashboard.csv")],
    }
    assert [r.status_code for r in answers[("/v1/orders/supervision", "POST")]] == [201, 409, 422]
    check_all(schema, answers)
    case = answers[("/v1/orders/supervision", "POST")][0].json()
    assert (case["kind"], case["risk_tier"], case.get("comparison", "absent")) == ("supervision", 5, "absent")
    dashboard = answers[("/v1/orders/dashboard", "GET")][0]
    assert dashboard.status_code == 200 and set(dashboard.json()) == documented_fields(spec, "DashboardBody")
    table = answers[("/v1/orders/dashboard.csv", "GET")][0]
    assert table.status_code == 200 and table.text.startswith("dimension,key,orders")


def test_receipt_answers_match_the_document(api, schema, spec, monkeypatch):
    receipt = api.post("/v1/photos/assess", **photo()).json()["receipt"]
    found = api.get(f"/v1/reports/{receipt}")
    assert found.status_code == 200 and found.json()["stage"] == "received"
    assert set(found.json()) == documented_fields(spec, "ReportStatus")
    unknown = api.get("/v1/reports/AAAA-BBBB-CCCC-DDDD-EEEE-FFFF")
    malformed = api.get("/v1/reports/not-a-code")
    monkeypatch.setattr(bentoml.get_current_service().backends, "receipt_lookups", RateLimiter(limit=1, window=60))
    api.get(f"/v1/reports/{receipt}")
    limited = api.get(f"/v1/reports/{receipt}")
    assert [r.status_code for r in (unknown, malformed, limited)] == [404, 404, 429]
    for response in (found, unknown, malformed, limited):
        conforms(schema, "/v1/reports/{receipt}", "GET", response)


@pytest.fixture
def enterprise_keys(api, tmp_path):
    """Auth on with the usual keys and one enterprise key bound to E-DOC."""
    with auth_on(api, tmp_path, api_keys=f"{ENV_KEYS},enterprise:{ENTERPRISE_KEY}:E-DOC") as client:
        yield client


def test_order_auth_answers_match_the_document(enterprise_keys, schema, spec):
    client, officer, firm = enterprise_keys, bearer("reviewer"), {"Authorization": f"Bearer {ENTERPRISE_KEY}"}
    photo_id = client.post("/v1/photos/assess", **photo(), headers=bearer("intake")).json()["photo_id"]
    client.post(f"/v1/review/{photo_id}", json={"decision": "confirm"}, headers=officer)
    created = client.post("/v1/orders/", json={"photo_id": photo_id, "enterprise_id": "E-DOC"}, headers=officer)
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    answers = {
        ("/v1/orders/", "GET"): [client.get("/v1/orders/"), client.get("/v1/orders/", headers=bearer("intake"))],
        ("/v1/orders/", "POST"): [
            client.post("/v1/orders/", json={"photo_id": photo_id, "enterprise_id": "E-DOC"}, headers=firm)
        ],
        ("/v1/orders/{order_id}", "GET"): [client.get(f"/v1/orders/{order_id}", headers=firm)],
        ("/v1/orders/{order_id}/transitions", "POST"): [
            client.post(f"/v1/orders/{order_id}/transitions", json={"action": "close"}, headers=firm)
        ],
        ("/v1/orders/dashboard", "GET"): [client.get("/v1/orders/dashboard", headers=firm)],
        ("/v1/reports/{receipt}", "GET"): [client.get("/v1/reports/AAAA-BBBB-CCCC-DDDD-EEEE-FFFF")],
    }
    statuses = [r.status_code for responses in answers.values() for r in responses]
    assert statuses == [401, 403, 403, 200, 403, 403, 404]  # the receipt lookup needs no key
    check_all(schema, answers)
    seen = answers[("/v1/orders/{order_id}", "GET")][0].json()
    assert "photo_id" not in seen and set(seen) < documented_fields(spec, "OrderDetail")


def test_auth_answers_match_the_document(secured, schema):
    for path, method, request in [
        ("/v1/photos/assess", "POST", lambda: secured.post("/v1/photos/assess", **photo())),
        ("/v1/review/queue", "GET", lambda: secured.get("/v1/review/queue", headers=bearer("intake"))),
        ("/v1/admin/reload", "POST", lambda: secured.post("/v1/admin/reload", json={}, headers=bearer("reviewer"))),
        ("/v1/review/me", "GET", lambda: secured.get("/v1/review/me")),
    ]:
        response = request()
        assert response.status_code in (401, 403)
        conforms(schema, path, method, response)
    signed_in = secured.get("/v1/review/me", headers=bearer("reviewer"))
    assert signed_in.status_code == 200
    conforms(schema, "/v1/review/me", "GET", signed_in)


def test_root_redirects_to_docs_and_the_page_names_only_this_host(api):
    root = api.get("/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (307, "/docs")
    page = api.get("/docs")
    assert page.status_code == 200 and "Ankang API" in page.text
    assert "http://" not in page.text and "https://" not in page.text and "//" not in page.text.replace("://", "")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/docs/ankang.js"):
        assert api.get(asset).status_code == 200, asset
    assert api.get("/docs/assets/../../serving/settings.py").status_code == 404


def documented_examples(spec) -> list[tuple[str, str, dict]]:
    """Every JSON request body the document gives an example of: what /docs "Try it out" sends."""
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in schema:
                schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            if "example" in schema:
                found.append((path, method, schema["example"]))
            elif schema.get("properties") and all("example" in field for field in schema["properties"].values()):
                found.append((path, method, {name: field["example"] for name, field in schema["properties"].items()}))
    return found


def claim_cases(api) -> dict[str, str]:
    """Fresh claims for a claims example: an open case of two claims, another open case of the same
    enterprise, and the receipt of a closed case (feedback is for a closed stage)."""
    enterprise = f"E-{uuid.uuid4().hex[:6]}"

    def claim(claim_type: str) -> dict:
        body = {"channel": "walk_in", "enterprise_id": enterprise, "type": claim_type, "description": "例"}
        return api.post("/v1/claims/", json=body).json()

    first, second, other, closed = claim("wage_arrears"), claim("wage_arrears"), claim("dismissal"), claim("contract")
    for body in (
        {"action": "dispatch", "handler": "arbitration"},
        {"action": "handle"},
        {"action": "close", "outcome": "mediated"},
    ):
        api.post(f"/v1/claims/{closed['case_id']}/transitions", json=body)
    return {
        "case_id": first["case_id"],
        "claim_id": second["claim_id"],
        "other_case_id": other["case_id"],
        "receipt": closed["receipt"],
    }


def test_every_documented_example_runs_as_shown(api, spec, monkeypatch):
    """Each example as /docs shows it, on real ids: the path's, a confirmed case for a new order, and an
    enterprise no earlier request has opened a supervision case for (the fuzz tests post the examples too).
    The per-address feedback limit starts afresh: earlier tests' bad bodies from the same client count."""
    monkeypatch.setattr(bentoml.get_current_service().backends, "feedback_limiter", RateLimiter())
    examples = documented_examples(spec)
    assert {(path, method) for path, method, _ in examples} >= {
        ("/v1/enterprises/score", "post"),
        ("/v1/review/{photo_id}", "post"),
        ("/v1/orders/", "post"),
        ("/v1/orders/supervision", "post"),
        ("/v1/orders/{order_id}", "patch"),
        ("/v1/orders/{order_id}/transitions", "post"),
    }
    ids = {
        "photo_id": api.post("/v1/photos/assess", **photo()).json()["photo_id"],
        "order_id": new_order(api, f"E-{uuid.uuid4().hex[:6]}").json()["id"],
    }
    for path, method, body in examples:
        if "photo_id" in body:  # an order is issued for a confirmed case
            body = {**body, "photo_id": confirmed_case(api)}
        if "enterprise_id" in body and "risk_tier" in body:  # one supervision case per enterprise
            body = {**body, "enterprise_id": f"E-{uuid.uuid4().hex[:6]}"}
        here = {**ids, **claim_cases(api)} if "{case_id}" in path or "{receipt}" in path else ids
        if "into" in body:  # a merge goes into another open case of the same enterprise
            body = {**body, "into": here["other_case_id"]}
        if "claim_ids" in body:  # a split takes one of the case's two claims
            body = {**body, "claim_ids": [here["claim_id"]]}
        response = api.request(method.upper(), path.format(**here), json=body)
        assert response.status_code < 300, (path, body, response.text)


def test_a_declared_parameter_out_of_range_answers_422_naming_it(api):
    response = api.get("/v1/unions/", params={"offset": 2**70})  # the fuzz test found it as a 500
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "offset"
