"""Issue 21, item 7: a backend outage is a 503 with Retry-After, /readyz says so, and service resumes by itself.

PostgreSQL refusing connections gave 500s (and /readyz stayed 200), Redis gone gave 500s at once
or a 60 s hang on sign-in, and a full photo disk gave 500. The outages here are real: the
service's own engine and Redis clients talk through a TCP proxy (tests/serving/outage_proxy.py)
that the test takes down, makes silent, and brings back.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.auth.middleware import ApiKeyAuth
from serving.orders.receipts import RateLimiter
from serving.settings import ServingSettings
from serving.windows import RedisWindows
from tests.server import app_middleware
from tests.serving.conftest import encode_image
from tests.serving.hardening_support import answering, service_instance, stores_on
from tests.serving.outage_proxy import OutageProxy
from tests.serving.test_auth_api import form_token
from tests.serving.test_review_store import postgres_schema

REDIS_DB = 3  # the harden engineer's Redis database (ports 3300-3399)


def photo(colour=(200, 10, 10)):
    return {"files": {"photo": ("a.jpg", encode_image(colour), "image/jpeg")}}


def assert_outage(response, backend: str) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert backend in response.json()["error"]["message"]


@pytest.fixture
def postgres_outage(api, tmp_path: Path) -> Iterator[tuple]:
    proxy = OutageProxy(("127.0.0.1", 5432))
    try:
        for url in postgres_schema():
            proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
            with stores_on(api, proxied, tmp_path / "photos") as client:
                yield client, proxy
    finally:
        proxy.close()


@pytest.fixture
def redis_outage(api) -> Iterator[tuple]:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(db=REDIS_DB, socket_timeout=1).ping()
    except redis.exceptions.ConnectionError as error:
        pytest.skip(f"Redis at 127.0.0.1:6379 does not answer: {error}")
    proxy = OutageProxy(("127.0.0.1", 6379))
    url = f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}"
    service = service_instance()
    saved = (service.backends.receipt_lookups, service.settings)
    service.backends.receipt_lookups = RateLimiter(redis_url=url, prefix="ankang:harden-test-lookups")
    service.settings = service.settings.with_changes(redis_url=url)
    try:
        yield answering(api), proxy, url
    finally:
        service.backends.receipt_lookups, service.settings = saved
        proxy.close()
        client = redis.Redis(db=REDIS_DB)
        for key in client.scan_iter("ankang:harden-test-*"):
            client.delete(key)


def test_postgres_down_is_503_everywhere_and_not_ready_then_recovers_by_itself(postgres_outage):
    client, proxy = postgres_outage
    intake = client.post("/v1/photos/assess", **photo())
    assert intake.status_code == 200
    receipt = intake.json()["receipt"]
    proxy.down()
    assert_outage(client.get(f"/v1/reports/{receipt}"), "database")
    assert_outage(client.get("/v1/review/queue"), "database")
    assert_outage(client.get("/v1/orders/"), "database")
    assert_outage(client.post("/v1/photos/assess", **photo((1, 1, 1))), "database")
    assert client.get("/readyz").status_code == 503
    proxy.up()
    assert client.get("/readyz").status_code == 200
    assert client.get(f"/v1/reports/{receipt}").status_code == 200
    assert client.post("/v1/photos/assess", **photo((1, 1, 1))).status_code == 200


def test_redis_down_or_silent_is_503_for_receipt_lookups_and_not_ready(redis_outage):
    client, proxy, _url = redis_outage
    unknown = "/v1/reports/AAAA-BBBB-CCCC-DDDD-EEEE-FFFF"
    assert client.get(unknown).status_code == 404
    proxy.down()
    assert_outage(client.get(unknown), "redis")
    assert client.get("/readyz").status_code == 503
    proxy.silent()  # accepts, never answers: the 1 s socket timeout ends it
    assert_outage(client.get(unknown), "redis")
    proxy.up()
    assert client.get(unknown).status_code == 404
    assert client.get("/readyz").status_code == 200


def test_sign_in_with_redis_down_is_503_not_a_hang(api, redis_outage, tmp_path: Path):
    client, proxy, url = redis_outage
    middleware = app_middleware(api, ApiKeyAuth)
    before = middleware.settings
    middleware.configure(
        ServingSettings(
            data_dir=tmp_path, auth=True, api_keys="reviewer:reviewer-key-0123456789abcdef:R", redis_url=url
        )
    )
    try:
        token = form_token(client)
        proxy.silent()
        response = client.post("/review/sign-in", data={"key": "wrong-key", "next": "/review", "csrf": token})
        assert_outage(response, "redis")
    finally:
        client.cookies.clear()
        middleware.configure(before)


def test_a_full_photo_disk_is_503_and_writes_nothing(api, tmp_path: Path, monkeypatch):
    import serving.review.photos

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(serving.review.photos, "atomic_write", disk_full)
    from serving.review.queue import QueueFilter

    store = service_instance().backends.review_store
    total = lambda: store.queue(QueueFilter(status="all", limit=1))["total"]  # noqa: E731
    before = total()
    response = answering(api).post("/v1/photos/assess", **photo((3, 3, 3)))
    assert_outage(response, "photo store")
    assert total() == before


def test_redis_calls_give_up_within_a_second():
    windows = RedisWindows("redis://127.0.0.1:6379/3", prefix="ankang:harden-test", window=1.0)
    options = windows.client.connection_pool.connection_kwargs
    assert options["socket_timeout"] <= 1 and options["socket_connect_timeout"] <= 1
