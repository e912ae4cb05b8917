"""Keys and roles on the real API (Ankang.to_asgi() with auth on) and on a small stand-in review app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ankang_cli import main as ankang
from runtime.errors import InputError
from serving.auth import ApiKeyAuth, KeyStore, SessionSigner, require_role, required_role
from serving.settings import ServingSettings
from tests.server import app_middleware
from tests.serving.conftest import encode_image

KEYS = {"intake": "intake-key-7f3a9c1e2b", "reviewer": "reviewer-key-04d8e6a1c9", "admin": "admin-key-5b2c7e9d1f"}
ENV_KEYS = ",".join(f"{role}:{key}" for role, key in KEYS.items())


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


@contextmanager
def auth_on(api: TestClient, tmp_path: Path, *, api_keys: str = ENV_KEYS) -> Iterator[TestClient]:
    """The whole API (the shared in-process app) with auth on, built from settings, then off again.

    BentoML's metrics allow one ASGI app per process, so this reconfigures that app's `ApiKeyAuth`
    with the settings a test wants instead of building a second app.
    """
    middleware = app_middleware(api, ApiKeyAuth)
    before = middleware.settings
    middleware.configure(ServingSettings(data_dir=tmp_path, auth=True, api_keys=api_keys))
    try:
        yield api
    finally:
        api.cookies.clear()
        middleware.configure(before)


@pytest.fixture
def secured(api: TestClient, tmp_path: Path) -> Iterator[TestClient]:
    """The whole API with auth on and one env key per role."""
    with auth_on(api, tmp_path) as client:
        yield client


def assess(client: TestClient, headers: dict[str, str] | None = None):
    return client.post(
        "/v1/photos/assess", files={"photo": ("a.jpg", encode_image((255, 0, 0)), "image/jpeg")}, headers=headers or {}
    )


def test_photo_assessment_needs_a_key(secured):
    response = assess(secured)
    assert response.status_code == 401
    assert response.json()["error"]["field"] == "authorization"
    assert "Authorization: Bearer KEY" in response.json()["error"]["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_wrong_key_is_401_and_right_key_passes(secured):
    assert assess(secured, {"Authorization": "Bearer not-a-key"}).json() == {
        "error": {"field": "authorization", "message": "the API key is not valid"}
    }
    assert assess(secured, {"Authorization": "Basic " + KEYS["intake"]}).status_code == 401
    assert assess(secured, bearer("intake")).status_code == 200
    assert assess(secured, {"X-API-Key": KEYS["intake"]}).status_code == 200
    assert assess(secured, bearer("admin")).status_code == 200


def test_reviewer_key_cannot_assess(secured):
    response = assess(secured, bearer("reviewer"))
    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        "this key has role 'reviewer'; /v1/photos/assess needs role 'intake'"
    )


def test_admin_reload_is_admin_only(secured):
    assert secured.post("/v1/admin/reload", headers=bearer("intake")).status_code == 403
    assert secured.post("/v1/admin/reload", headers=bearer("reviewer")).status_code == 403
    assert secured.post("/v1/admin/reload").status_code == 401
    assert secured.post("/v1/admin/reload", headers=bearer("admin")).status_code not in (401, 403)


def test_review_endpoints_need_reviewer(secured):
    assert secured.get("/v1/review/queue").status_code == 401
    assert secured.get("/v1/review/queue", headers=bearer("intake")).status_code == 403


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/docs.json", "/"])
def test_health_and_docs_stay_open(secured, path):
    assert secured.get(path).status_code == 200


def test_request_id_is_returned_and_client_id_kept(secured):
    assert re.fullmatch(r"[0-9a-f]{32}", assess(secured).headers["x-request-id"])
    kept = secured.get("/livez", headers={"X-Request-ID": "intake-42-abcdef"})
    assert kept.headers["x-request-id"] == "intake-42-abcdef"
    forged = secured.get("/livez", headers={"X-Request-ID": "bad id <script>"})
    assert forged.headers["x-request-id"] != "bad id <script>"


@pytest.mark.parametrize(
    "path, role",
    [
        ("/v1/photos/assess", "intake"),
        ("/v1/enterprises/score", "intake"),
        ("/v1/enterprises/score-file", "intake"),
        ("/v1/review/queue", "reviewer"),
        ("/v1/review/abc", "reviewer"),
        ("/review", "reviewer"),
        ("/review/static/app.js", "reviewer"),
        ("/v1/admin/reload", "admin"),
        ("/v1/anything-new", "admin"),
        ("/livez", None),
        ("/docs.json", None),
        ("/metrics", None),
        ("/reviewer", None),
        ("/v1photos", None),
        ("//v1/review/queue", "admin"),
        ("/./review/", "admin"),
        ("/review/../v1/photos/assess", "admin"),
        ("/v1/review/../admin/reload", "admin"),
        ("/v1//photos/assess", "admin"),
        ("/review/../livez", "admin"),
        ("/docs/../livez", None),
    ],
)
def test_path_prefixes_map_to_roles(path, role):
    assert required_role(path) == role


# --- a stand-in review app: sessions, CSRF and sign-in, independent of the review engineer's routes ---


async def _whoami(request):
    principal = require_role(request, "reviewer")
    return JSONResponse({"key_id": principal.key_id, "via": principal.via})


def review_stub(tmp_path: Path, *, env: str = ENV_KEYS) -> TestClient:
    app = Starlette(
        routes=[
            Route("/v1/review/{photo_id}", _whoami, methods=["GET", "POST"]),
            Route("/review", _whoami, methods=["GET"]),
        ]
    )
    settings = ServingSettings(data_dir=tmp_path, auth=True, api_keys=env)
    wrapped = ApiKeyAuth(app, settings=settings, signer=SessionSigner(b"s" * 32))
    return TestClient(wrapped, base_url="http://testserver", follow_redirects=False)


def form_token(client: TestClient) -> str:
    """Open the sign-in form as a browser would: it sets the form's nonce cookie and carries its token."""
    page = client.get("/review/sign-in")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def sign_in(client: TestClient, key: str, *, next_path: str = "/review", headers: dict[str, str] | None = None):
    return client.post(
        "/review/sign-in", data={"key": key, "next": next_path, "csrf": form_token(client)}, headers=headers or {}
    )


def test_sign_in_sets_strict_httponly_session_and_csrf_cookie(tmp_path):
    client = review_stub(tmp_path)
    response = sign_in(client, KEYS["reviewer"])
    assert response.status_code == 303 and response.headers["location"] == "/review"
    cookies = response.headers.get_list("set-cookie")
    session = next(value for value in cookies if value.startswith("ankang_session="))
    csrf = next(value for value in cookies if value.startswith("ankang_csrf="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/" in session
    assert "HttpOnly" not in csrf and "SameSite=Strict" in csrf
    assert KEYS["reviewer"] not in session
    assert client.get("/review").json() == {"key_id": "env-2", "via": "session"}


def test_sign_in_with_a_bad_key_or_an_intake_key_is_refused_saying_why(tmp_path):
    client = review_stub(tmp_path)
    bad = sign_in(client, "guess")
    assert bad.status_code == 401 and "That is not a valid key." in bad.text
    intake = sign_in(client, KEYS["intake"])
    assert intake.status_code == 403
    assert "Intake keys are for machines (photo intake, enterprise scoring) and have no pages" in intake.text
    for response in (bad, intake):
        assert "ankang_session=" not in " ".join(response.headers.get_list("set-cookie"))


ENTERPRISE_KEY = "enterprise-key-9c1d2e3f4a"


def test_one_sign_in_page_sends_each_role_to_its_home(tmp_path):
    """Issue 23 item 2: an enterprise key was refused as 'not a valid reviewer key'."""
    env = f"{ENV_KEYS},enterprise:{ENTERPRISE_KEY}:E100"
    for path in ("/sign-in", "/review/sign-in"):
        assert review_stub(tmp_path, env=env).get(path).status_code == 200
    enterprise = review_stub(tmp_path, env=env)
    assert sign_in(enterprise, ENTERPRISE_KEY, next_path="/orders/").headers["location"] == "/orders/"
    assert sign_in(enterprise, ENTERPRISE_KEY, next_path="/review").headers["location"] == "/orders/"
    officer = review_stub(tmp_path, env=env)
    assert sign_in(officer, KEYS["reviewer"], next_path="/orders/").headers["location"] == "/orders/"
    assert sign_in(officer, KEYS["reviewer"], next_path="").headers["location"] == "/review"


def test_an_enterprise_session_carries_its_enterprise_and_is_kept_off_the_review_queue(tmp_path):
    env = f"{ENV_KEYS},enterprise:{ENTERPRISE_KEY}:E100"
    client = review_stub(tmp_path, env=env)
    sign_in(client, ENTERPRISE_KEY, next_path="/orders/")
    page = client.get("/review", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/orders/"
    assert client.get("/v1/review/p1").status_code == 403


def test_decision_by_session_needs_the_csrf_token(tmp_path):
    client = review_stub(tmp_path)
    sign_in(client, KEYS["reviewer"])
    refused = client.post("/v1/review/p1")
    assert refused.status_code == 403
    assert refused.json()["error"]["field"] == "csrf"
    wrong = client.post("/v1/review/p1", headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    token = client.cookies["ankang_csrf"]
    assert client.post("/v1/review/p1", headers={"X-CSRF-Token": token}).status_code == 200
    cross_site = client.post("/v1/review/p1", headers={"X-CSRF-Token": token, "Origin": "https://evil.example"})
    assert cross_site.status_code == 403


def test_api_key_callers_need_no_csrf_token(tmp_path):
    client = review_stub(tmp_path)
    assert client.post("/v1/review/p1", headers=bearer("reviewer")).json()["via"] == "key"


def test_tampered_or_foreign_session_cookie_is_refused(tmp_path):
    client = review_stub(tmp_path)
    sign_in(client, KEYS["reviewer"])
    cookie = client.cookies["ankang_session"]
    payload, signature = cookie.split(".")
    forged = SessionSigner(b"another-secret" * 3).issue(parse_principal("env-3", "admin"))
    for value in (payload + "." + signature[::-1], forged, "garbage"):
        client.cookies.clear()
        client.cookies.set("ankang_session", value)
        assert client.get("/v1/review/p1").status_code == 401


def parse_principal(key_id: str, role: str):
    from serving.auth import Principal

    return Principal(key_id, role)


def test_unsigned_in_browser_is_sent_to_sign_in(tmp_path):
    response = review_stub(tmp_path).get("/review", headers={"Accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/review"
    filtered = review_stub(tmp_path).get(
        "/review", params={"status": "open", "from": "2026-11-26"}, headers={"Accept": "text/html"}
    )
    assert filtered.headers["location"] == "/sign-in?next=/review%3Fstatus%3Dopen%26from%3D2026-11-26"


def test_sign_in_redirect_never_leaves_the_site(tmp_path):
    client = review_stub(tmp_path)
    assert (
        sign_in(client, KEYS["reviewer"], next_path="/review/?status=open").headers["location"]
        == "/review/?status=open"
    )
    for target in ("https://evil.example/", "//evil.example/review", "/review/../v1/admin", "/review?x=<script>"):
        response = sign_in(client, KEYS["reviewer"], next_path=target)
        assert response.headers["location"] == "/review"


def test_sign_in_from_another_origin_is_refused_with_a_page_saying_why(tmp_path):
    response = sign_in(review_stub(tmp_path), KEYS["reviewer"], headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "Sign in from the sign-in page of this site." in response.text
    assert "ankang_session" not in response.headers.get("set-cookie", "")


def test_sign_in_with_origin_null_passes_on_the_form_token(tmp_path):
    """Chromium sends `Origin: null` on a form POST under a strict referrer policy: the token decides."""
    client = review_stub(tmp_path)
    assert sign_in(client, KEYS["reviewer"], headers={"Origin": "null"}).status_code == 303
    assert client.get("/review").json() == {"key_id": "env-2", "via": "session"}


@pytest.mark.parametrize("tamper", ["no form token", "no nonce cookie", "another form's token"])
def test_sign_in_without_the_forms_own_token_is_refused_in_html(tmp_path, tamper):
    client = review_stub(tmp_path)
    token = form_token(client)
    if tamper == "no nonce cookie":
        client.cookies.clear()
    elif tamper == "another form's token":
        token = form_token(review_stub(tmp_path / "other"))
    data = {"key": KEYS["reviewer"], "next": "/review", **({} if tamper == "no form token" else {"csrf": token})}
    response = client.post("/review/sign-in", data=data, headers={"Origin": "null"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "This sign-in form has expired or did not come from this site" in response.text
    assert re.search(r'name="csrf" value="[^"]+"', response.text)  # a fresh form to try again with
    assert "ankang_session=" not in " ".join(response.headers.get_list("set-cookie"))


def test_sign_out_clears_both_cookies(tmp_path):
    client = review_stub(tmp_path)
    sign_in(client, KEYS["reviewer"])
    response = client.post("/review/sign-out")
    assert response.status_code == 303
    assert all("Max-Age=0" in value for value in response.headers.get_list("set-cookie"))


def test_no_configured_key_denies_every_protected_request(tmp_path):
    client = review_stub(tmp_path, env="")
    response = client.get("/v1/review/p1", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 401
    assert "ankang keys create --role ROLE" in response.json()["error"]["message"]
    refused = sign_in(client, "anything")
    assert refused.status_code == 401 and "No API keys are configured on this server" in refused.text


def test_require_role_raises_input_errors():
    class FakeRequest:
        def __init__(self, principal):
            self.scope = {"ankang.principal": principal}

    with pytest.raises(InputError, match="this key has role 'intake'; this needs role 'reviewer'"):
        require_role(FakeRequest(parse_principal("k1", "intake")), "reviewer")
    assert require_role(FakeRequest(parse_principal("k2", "admin")), "reviewer").key_id == "k2"


def test_review_page_session_decides_on_the_real_review_api(secured):
    case = assess(secured, bearer("intake")).json()["photo_id"]
    signed_in = secured.post(
        "/review/sign-in",
        data={"key": KEYS["reviewer"], "next": "/review", "csrf": form_token(secured)},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    try:
        assert secured.get("/review/").status_code == 200
        without_token = secured.post(f"/v1/review/{case}", json={"decision": "confirm"})
        assert without_token.status_code == 403 and without_token.json()["error"]["field"] == "csrf"
        decided = secured.post(
            f"/v1/review/{case}", json={"decision": "confirm"}, headers={"X-CSRF-Token": secured.cookies["ankang_csrf"]}
        )
        assert decided.status_code == 201, decided.text
        history = secured.get(f"/v1/review/{case}").json()["history"]
        assert [entry["reviewer"] for entry in history] == [{"key_id": "env-2", "holder": None}]
        assert assess(secured).status_code == 401  # a reviewer session is not an intake key
    finally:
        secured.cookies.clear()


def test_every_response_carries_security_headers(secured):
    for response in (secured.get("/livez"), assess(secured), assess(secured, bearer("intake"))):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-frame-options"] == "DENY"


def test_repeated_failed_sign_ins_are_throttled(tmp_path):
    client = review_stub(tmp_path)
    statuses = [sign_in(client, f"guess-{attempt}").status_code for attempt in range(21)]
    assert statuses[:20] == [401] * 20 and statuses[20] == 429
    assert sign_in(client, KEYS["reviewer"]).status_code == 429  # even the right key waits out the window


def test_real_app_without_any_key_denies_protected_paths_but_stays_up(api, tmp_path):
    with auth_on(api, tmp_path, api_keys="") as client:
        response = assess(client, {"Authorization": "Bearer anything-at-all"})
        assert response.status_code == 401
        assert "no API keys are configured on this server" in response.json()["error"]["message"]
        assert client.get("/v1/review/queue").status_code == 401
        assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "//v1/review/queue",
        "/v1/review//queue",
        "/v1/review/queue/",
        "/V1/review/queue",
        "/v1/review/%2e%2e/queue",
        "/v1/./review/queue",
        "/review/../v1/review/queue",
        "/v1/review/queue%00",
        "/v1/review;/queue",
    ],
)
def test_path_tricks_never_reach_the_review_api_without_a_key(secured, path):
    response = secured.get(path)
    assert response.status_code in (401, 404, 405), (path, response.status_code, response.text[:200])
    assert "items" not in response.text


def test_a_key_created_by_the_cli_authenticates_through_the_app_until_revoked(api, key_settings, capsys):
    assert ankang(["keys", "create", "--role", "reviewer", "--holder", "王安全"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    clock = [1000.0]
    keys = KeyStore.from_settings(key_settings, refresh_seconds=2.0, clock=lambda: clock[0])
    middleware = app_middleware(api, ApiKeyAuth)
    before = middleware.settings
    middleware.configure(key_settings.with_changes(auth=True), keys=keys)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        assert api.get("/v1/review/queue", headers=headers).status_code == 200
        assert assess(api, headers).status_code == 403  # a reviewer key, checked by role
        assert ankang(["keys", "revoke", key.split("_")[1]]) == 0
        assert api.get("/v1/review/queue", headers=headers).status_code == 200  # this replica's cache, 0 s old
        clock[0] += 2.0
        response = api.get("/v1/review/queue", headers=headers)
        assert response.status_code == 401 and "no API keys are configured" in response.json()["error"]["message"]
    finally:
        middleware.configure(before)
