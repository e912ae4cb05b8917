"""/docs and /docs.json: Ankang's own document, typed for every route, and real answers that match it
(schemathesis checks each response: status documented, media type, body schema) (issue 14.3)."""

from __future__ import annotations

import io

import pytest
import schemathesis

from serving.auth import required_role
from tests.serving.conftest import encode_image
from tests.serving.test_auth_api import (
    bearer,
    secured,  # noqa: F401  (fixture: the same app with keys and roles on)
)
from tests.serving.test_risk_scorer import low_risk

RED = (255, 0, 0)


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
