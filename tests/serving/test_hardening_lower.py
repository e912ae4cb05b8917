"""Issue 21, item 9: ids normalised, a strict CSP on the pages, API-key guessing throttled,
no caching of receipt answers, and Retry-After on every 429."""

from __future__ import annotations

import pytest

from runtime.errors import InputError
from serving.hostile_text import normalised_id
from tests.serving.test_auth_api import KEYS, auth_on
from tests.serving.test_risk_scorer import low_risk

UNKNOWN_RECEIPT = "/v1/reports/AAAA-BBBB-CCCC-DDDD-EEEE-FFFF"


def test_ids_are_nfkc_without_format_characters_and_refuse_controls():
    assert normalised_id("enterprise_id", "E100\u200b") == "E100"
    assert normalised_id("enterprise_id", "\ufeffＥ１００\u2060") == "E100"
    with pytest.raises(InputError) as refused:
        normalised_id("enterprise_id", "E1\x0700")
    assert refused.value.field == "enterprise_id" and "control character" in refused.value.message


def test_a_zero_width_character_does_not_open_a_second_supervision_case(api):
    first = api.post("/v1/orders/supervision", json={"enterprise_id": "Z100", "risk_tier": 5})
    assert first.status_code == 201, first.text
    for twin in ("Z100\u200b", "Ｚ１００", "\u200dZ100"):
        again = api.post("/v1/orders/supervision", json={"enterprise_id": twin, "risk_tier": 5})
        assert again.status_code == 409, (twin, again.text)
    bell = api.post("/v1/orders/supervision", json={"enterprise_id": "Z1\x0700", "risk_tier": 5})
    assert bell.status_code == 422 and bell.json()["error"]["field"] == "enterprise_id"
    listed = api.get("/v1/orders/", params={"enterprise_id": "Z100\u200b", "state": "all"}).json()
    assert [item["enterprise_id"] for item in listed["items"]] == ["Z100"]


def test_scoring_a_twin_id_finds_the_same_supervision_case(api):
    high = dict(low_risk("Y200"), credit_grade="C", mass_incident_36m=1)
    first = api.post("/v1/enterprises/score", json={"enterprises": [high]}).json()["results"][0]
    twin = api.post("/v1/enterprises/score", json={"enterprises": [dict(high, enterprise_id="Y200\u200b")]})
    second = twin.json()["results"][0]
    assert second["enterprise_id"] == "Y200"
    assert second["supervision"]["order_id"] == first["supervision"]["order_id"]


@pytest.mark.parametrize("path", ["/review", "/orders/"])
def test_pages_send_a_strict_content_security_policy(api, path):
    response = api.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy


def test_receipt_answers_are_never_cached(api):
    missing = api.get(UNKNOWN_RECEIPT)
    assert missing.status_code == 404 and missing.headers["cache-control"] == "no-store"
    malformed = api.get("/v1/reports/not-a-code")
    assert malformed.headers["cache-control"] == "no-store"


def test_api_key_guessing_is_throttled_per_client_with_retry_after(api, tmp_path):
    with auth_on(api, tmp_path) as client:
        answers = [client.get("/v1/review/queue", headers={"Authorization": f"Bearer guess-{n}"}) for n in range(21)]
        assert [a.status_code for a in answers[:20]] == [401] * 20
        assert answers[20].status_code == 429 and int(answers[20].headers["retry-after"]) > 0
        blocked = client.get("/v1/review/queue", headers={"Authorization": f"Bearer {KEYS['reviewer']}"})
        assert blocked.status_code == 429  # the address is out of guesses until the window passes


def test_every_429_says_when_to_retry(api):
    from tests.serving.hardening_support import service_instance

    service = service_instance()
    from serving.orders.receipts import RateLimiter

    saved, service.backends.receipt_lookups = service.backends.receipt_lookups, RateLimiter(limit=2)
    try:
        statuses = [api.get(UNKNOWN_RECEIPT) for _ in range(3)]
    finally:
        service.backends.receipt_lookups = saved
    assert [answer.status_code for answer in statuses] == [404, 404, 429]
    assert int(statuses[2].headers["retry-after"]) > 0


def test_a_short_inline_key_stops_the_service_at_start(tmp_path):
    from serving.auth.keys import check_env_key_lengths
    from tests.server import clean_env, served

    check_env_key_lengths("intake:" + "k" * 24 + ",reviewer:" + "r" * 30 + ":王安全")
    with pytest.raises(ValueError, match="entry 2: the key has 10 characters; use at least 24"):
        check_env_key_lengths("intake:" + "k" * 24 + ",reviewer:short-key1:王安全")
    env = clean_env(ANKANG_DATA_DIR=str(tmp_path), ANKANG_API_KEYS="intake:guessable1", ANKANG_API_WORKERS="1")
    with pytest.raises(RuntimeError, match="exited"):
        with served(env):
            pass
