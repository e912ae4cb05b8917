"""Issue 21, item 3: sign-out ends the session on every replica, and only this site may sign you out.

After `POST /review/sign-out` the old cookie still read `/v1/review/me` and posted decisions for
8 h, and sign-out accepted `Origin: http://evil.example`. Now sign-out writes the session's id to
`revoked_sessions` (migration 0010), which every replica reads (at most 2 s stale; its own
sign-outs at once), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.auth.middleware import ApiKeyAuth
from serving.auth.revocations import SessionRevocations
from serving.auth.sessions import CSRF_COOKIE, SESSION_COOKIE, SessionSigner
from serving.settings import ServingSettings
from tests.serving.test_auth_api import ENV_KEYS, KEYS, _whoami, sign_in
from tests.serving.test_review_store import postgres_schema


def replica(tmp_path: Path, database_url: str | None) -> TestClient:
    """`review_stub` of tests/serving/test_auth_api.py on a given database: one API replica."""
    app = Starlette(routes=[Route("/v1/review/{photo_id}", _whoami, methods=["GET", "POST"])])
    settings = ServingSettings(data_dir=tmp_path, auth=True, api_keys=ENV_KEYS, database_url=database_url)
    return TestClient(ApiKeyAuth(app, settings=settings, signer=SessionSigner(b"s" * 32)), follow_redirects=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def replicas(request, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two replicas (separate middlewares, caches and engines) on one database, sharing the session secret."""
    urls = [None] if request.param == "sqlite" else postgres_schema()
    for url in urls:
        yield replica(tmp_path, url), replica(tmp_path, url)


def carry_session(source: TestClient, target: TestClient) -> dict[str, str]:
    """The signed-in browser's cookies, copied as an attacker who kept them would."""
    jar = {name: source.cookies.get(name) for name in (SESSION_COOKIE, CSRF_COOKIE)}
    for name, value in jar.items():
        target.cookies.set(name, value)
    return jar


def test_a_signed_out_cookie_is_refused_here_and_on_the_other_replica(replicas):
    first, second = replicas
    assert sign_in(first, KEYS["reviewer"]).status_code == 303
    kept = carry_session(first, second)
    assert second.get("/v1/review/p1").status_code == 200  # the other replica honours the live session
    assert first.post("/review/sign-out", headers={"Origin": "http://testserver"}).status_code == 303
    thief = TestClient(first.app, follow_redirects=False)
    for name, value in kept.items():
        thief.cookies.set(name, value)
    assert thief.get("/v1/review/p1").status_code == 401
    headers = {"X-CSRF-Token": kept[CSRF_COOKIE]}
    assert thief.post("/v1/review/p1", headers=headers).status_code == 401
    second.app.revocations._read_at = None  # the 2 s refresh, without waiting for it
    assert second.get("/v1/review/p1").status_code == 401
    assert second.post("/v1/review/p1", headers=headers).status_code == 401


def test_sign_out_from_another_origin_is_refused_and_the_session_lives_on(replicas):
    client, _ = replicas
    sign_in(client, KEYS["reviewer"])
    refused = client.post("/review/sign-out", headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "csrf"
    assert client.get("/v1/review/p1").status_code == 200


def test_a_new_sign_in_after_sign_out_works(replicas):
    client, _ = replicas
    sign_in(client, KEYS["reviewer"])
    client.post("/review/sign-out")
    client.cookies.clear()
    assert sign_in(client, KEYS["reviewer"]).status_code == 303
    assert client.get("/v1/review/p1").status_code == 200


def test_revocations_outlive_a_restart_and_expire_with_the_session(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'revocations.db'}"
    SessionRevocations(url).revoke("sid-1", expires=4_000_000_000)
    SessionRevocations(url).revoke("sid-old", expires=1_000_000_000)  # already expired: nothing to refuse
    fresh = SessionRevocations(url)
    assert fresh.is_revoked("sid-1") and not fresh.is_revoked("sid-old") and not fresh.is_revoked("sid-2")
