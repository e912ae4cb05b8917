"""Hypothesis against the auth middleware: arbitrary credentials never get in and never cause a 5xx."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.test_auth_api import KEYS, review_stub

HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)
COOKIE_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_.=+/%", max_size=300)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(
    authorization=HEADER_TEXT,
    api_key=HEADER_TEXT,
    session=COOKIE_TEXT,
    csrf=HEADER_TEXT,
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.sampled_from(["/v1/review/p1", "/review"]),
)
def test_made_up_credentials_are_refused_with_4xx(
    tmp_path_factory, authorization, api_key, session, csrf, method, path
):
    client = review_stub(tmp_path_factory.mktemp("keys"))
    headers = {
        "Authorization": authorization,
        "X-API-Key": api_key,
        "X-CSRF-Token": csrf,
        "Cookie": f"ankang_session={session}",
    }
    response = client.request(method, path, headers=headers)
    assert response.status_code in (401, 403, 405), response.text
    if response.status_code != 405:
        assert response.json()["error"]["field"] in ("authorization", "csrf")


@FUZZ
@given(
    prefix=st.sampled_from(["Bearer ", "bearer  ", "Bearer\t", ""]),
    role=st.sampled_from(list(KEYS)),
    mutation=st.sampled_from(["drop_last", "upper", "append", "none"]),
)
def test_only_the_exact_key_is_accepted(tmp_path_factory, prefix, role, mutation):
    key = KEYS[role]
    presented = {"drop_last": key[:-1], "upper": key.upper(), "append": key + "x", "none": key}[mutation]
    response = review_stub(tmp_path_factory.mktemp("keys")).get(
        "/v1/review/p1", headers={"Authorization": prefix + presented}
    )
    exact = mutation == "none" and prefix.strip().lower() == "bearer"
    if exact and role in ("reviewer", "admin"):
        assert response.status_code == 200
    else:
        assert response.status_code in (401, 403)


RAW_VALUE = st.binary(max_size=200)


@FUZZ
@given(
    authorization=RAW_VALUE,
    api_key=RAW_VALUE,
    cookie=RAW_VALUE,
    origin=RAW_VALUE,
    method=st.sampled_from(["GET", "POST", "PATCH"]),
)
def test_raw_header_bytes_never_crash_the_middleware(tmp_path_factory, authorization, api_key, cookie, origin, method):
    """Straight through ASGI (no HTTP client tidying the headers): any bytes get a 401/403 answer."""
    import asyncio

    from serving.auth import ApiKeyAuth, SessionSigner
    from serving.settings import ServingSettings
    from tests.serving.test_auth_api import ENV_KEYS

    async def app(scope, receive, send):
        raise AssertionError("a request without valid credentials reached the app")

    settings = ServingSettings(data_dir=tmp_path_factory.mktemp("k"), auth=True, api_keys=ENV_KEYS)
    middleware = ApiKeyAuth(app, settings=settings, signer=SessionSigner(b"s" * 32))
    headers = [(b"authorization", authorization), (b"x-api-key", api_key), (b"cookie", cookie), (b"origin", origin)]
    scope = {"type": "http", "method": method, "path": "/v1/review/p1", "headers": headers, "query_string": b""}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    assert sent[0]["status"] in (401, 403)
