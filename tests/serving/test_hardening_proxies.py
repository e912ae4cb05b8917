"""Issue 21, item 8: forwarded headers count only from ANKANG_TRUSTED_PROXIES (default: none).

uvicorn believed X-Forwarded-For from 127.0.0.1: rotating it gave 40 receipt lookups without a
429 (the limit is 30 a minute) and 30 wrong sign-ins without the lockout. Both ways are tested:
with no trusted proxy the header is ignored (the served service, through uvicorn, and in
process); with the proxy trusted, the client it forwards is the one counted.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.forwarded import ForwardedHeaders, TrustedProxies, parse_proxies
from serving.settings import ServingSettings, SettingsError
from tests.server import clean_env, served

UNKNOWN_RECEIPT = "/v1/reports/AAAA-BBBB-CCCC-DDDD-EEEE-FFFF"


def echo_client(proxies: str, peer: str) -> TestClient:
    async def who(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{request.client.host} {request.url.scheme}")

    app = ForwardedHeaders(Starlette(routes=[Route("/", who)]), proxies=proxies)
    return TestClient(app, client=(peer, 40000))


def test_without_trusted_proxies_forwarded_headers_are_ignored_even_from_localhost():
    client = echo_client("", "127.0.0.1")
    answer = client.get("/", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
    assert answer.text == "127.0.0.1 http"


def test_a_trusted_proxy_forwards_the_client_and_the_scheme():
    client = echo_client("10.0.0.0/8", "10.1.2.3")
    answer = client.get("/", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
    assert answer.text == "203.0.113.9 https"


def test_a_spoofed_chain_behind_the_proxy_yields_the_address_the_proxy_saw():
    proxies = TrustedProxies.from_text("10.0.0.0/8")
    assert proxies.client("10.1.2.3", ["6.6.6.6, 203.0.113.9, 10.9.9.9"]) == "203.0.113.9"
    assert proxies.client("198.51.100.4", ["203.0.113.9"]) == "198.51.100.4"  # not a proxy: header ignored
    assert (
        echo_client("10.0.0.0/8", "198.51.100.4")
        .get("/", headers={"X-Forwarded-For": "1.1.1.1"})
        .text.startswith("198.51.100.4")
    )


def test_the_setting_names_a_bad_entry():
    assert ServingSettings.from_env({"ANKANG_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}).trusted_proxies == "10.0.0.0/8, ::1"
    assert len(parse_proxies("10.0.0.0/8, ::1")) == 2
    with pytest.raises(SettingsError, match="ANKANG_TRUSTED_PROXIES .*'ingress' is not an IP address"):
        ServingSettings.from_env({"ANKANG_TRUSTED_PROXIES": "10.0.0.0/8, ingress"})


def lookups_until_429(base_url: str, rotate: bool) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for index in range(40):
            headers = {"X-Forwarded-For": f"203.0.113.{index + 1}"} if rotate else {}
            statuses.append(client.get(UNKNOWN_RECEIPT, headers=headers).status_code)
    return statuses


@pytest.mark.parametrize("trusted, throttled", [("", True), ("127.0.0.1", False)])
def test_the_served_service_counts_lookups_per_real_client(tmp_path, trusted, throttled):
    """Through uvicorn, as deployed: 40 lookups rotating X-Forwarded-For from 127.0.0.1."""
    env = clean_env(ANKANG_DATA_DIR=str(tmp_path), ANKANG_AUTH="on", ANKANG_API_WORKERS="1")
    if trusted:
        env["ANKANG_TRUSTED_PROXIES"] = trusted
    with served(env) as (base_url, _process):
        statuses = lookups_until_429(base_url, rotate=True)
    assert (429 in statuses) == throttled, statuses
    if throttled:
        assert statuses.index(429) == 30 and set(statuses[:30]) == {404}
