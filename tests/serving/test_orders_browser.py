"""The officers' dashboard in real Chromium, served by uvicorn over the whole service's ASGI app (auth
on): charts drawn as SVG from the store, an order walked to closing through HTTP shows up, no external host."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
import uvicorn

from tests.server import free_port, wait_in_page
from tests.serving.conftest import encode_image
from tests.serving.test_auth_api import auth_on

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "orders"
REVIEWER, INTAKE = "reviewer-dashboard-key-77ab", "intake-dashboard-key-1f0c"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")]


@pytest.fixture
def secured(api, tmp_path):
    with auth_on(api, tmp_path, api_keys=f"reviewer:{REVIEWER}:officer-li,intake:{INTAKE}") as client:
        yield client


@pytest.fixture
def base_url(secured):
    """The service's ASGI app (already started by the `api` fixture) on a real port."""
    server = uvicorn.Server(
        uvicorn.Config(secured.app, host="127.0.0.1", port=free_port(), lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=10)


def submitted_order(api, enterprise: str) -> str:
    """An order from a red (fire) photo, started and submitted with a grey proof photo."""
    reviewer = {"Authorization": f"Bearer {REVIEWER}"}
    photo_id = api.post(
        "/v1/photos/assess",
        files={"photo": ("f.jpg", encode_image((255, 0, 0)), "image/jpeg")},
        headers={"Authorization": f"Bearer {INTAKE}"},
    ).json()["photo_id"]
    api.post(f"/v1/review/{photo_id}", json={"decision": "confirm"}, headers=reviewer)
    order = api.post(
        "/v1/orders/", json={"photo_id": photo_id, "enterprise_id": enterprise, "district": "福田区"}, headers=reviewer
    ).json()
    api.post(f"/v1/orders/{order['id']}/transitions", json={"action": "start"}, headers=reviewer)
    proof = api.post(
        f"/v1/orders/{order['id']}/proof",
        headers=reviewer,
        files={"photo": ("p.jpg", encode_image((128, 128, 128), size=(96, 72)), "image/jpeg")},
    )
    assert proof.status_code == 201, proof.text
    return order["id"]


def closed_order(api, enterprise: str) -> str:
    order_id = submitted_order(api, enterprise)
    for action in ("verify", "close"):
        api.post(
            f"/v1/orders/{order_id}/transitions",
            json={"action": action},
            headers={"Authorization": f"Bearer {REVIEWER}"},
        )
    return order_id


def test_dashboard_page_draws_the_store_as_svg_charts(secured, base_url):
    from playwright.sync_api import sync_playwright

    enterprise = f"E-{uuid.uuid4().hex[:8]}"
    closed_order(secured, enterprise)
    figures = secured.get("/v1/orders/dashboard", headers={"Authorization": f"Bearer {REVIEWER}"}).json()
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(
            viewport={"width": 1400, "height": 900}, extra_http_headers={"Authorization": f"Bearer {REVIEWER}"}
        )
        page.on("request", lambda request: None if request.url.startswith(base_url) else outside.append(request.url))
        response = page.goto(f"{base_url}/orders/")
        assert response.status == 200
        assert page.inner_text("#total") == str(figures["orders"])
        closed_bar = page.locator('#by-state .bar[data-label="已闭环 closed"]')
        assert int(closed_bar.get_attribute("data-value")) == figures["by_state"]["closed"] >= 1
        assert closed_bar.locator("rect").bounding_box()["width"] > 0
        this_week = page.locator("#weekly .week").last
        assert int(this_week.get_attribute("data-rectified")) == figures["weekly"][-1]["rectified"] >= 1
        assert page.locator("#by-enterprise tr", has_text=enterprise).count() == 1
        assert page.locator("#by-district tr", has_text="福田区").count() == 1
        fill = page.evaluate("getComputedStyle(document.querySelector('#by-state .bar rect')).fill")
        assert fill == "rgb(47, 109, 181)"  # orders.css applied
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
        csv = page.request.get(f"{base_url}/v1/orders/dashboard.csv")
        assert csv.ok and enterprise in csv.text()
        anonymous = browser.new_page()
        anonymous.goto(f"{base_url}/orders/")
        assert anonymous.url == f"{base_url}/sign-in?next=/orders/"  # the page needs a signed-in officer
        assert page.request.get(f"{base_url}/v1/orders/dashboard", headers={"Authorization": ""}).status == 401
        browser.close()
    assert outside == []


def test_officer_signed_in_compares_before_and_after_and_verifies_on_the_order_page(secured, base_url):
    from playwright.sync_api import sync_playwright

    order_id = submitted_order(secured, f"E-{uuid.uuid4().hex[:8]}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{base_url}/orders/")  # not signed in: sent to sign in, and back
        assert page.url == f"{base_url}/sign-in?next=/orders/"
        page.fill("input[name=key]", REVIEWER)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/orders/")  # the session cookie, no key header from here on
        page.click(f'#waiting a[href="/orders/{order_id}"]')
        page.wait_for_selector("#state[data-state=submitted]")
        wait_in_page(
            page, "() => [...document.querySelectorAll('.photo img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        before, after = (float(page.inner_text(f"#{side} .probability")) for side in ("original", "proof"))
        assert before > 0.5 > after
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "order-before-after.png"), full_page=True)
        page.fill("textarea[name=comment]", "复查合格")
        page.click("button[data-action=verify]")
        page.wait_for_selector("#state[data-state=verified]")
        page.click("button[data-action=close]")
        page.wait_for_selector("#state[data-state=closed]")
        assert page.locator("#act").count() == 0  # nothing left to do
        browser.close()
    history = secured.get(f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {REVIEWER}"}).json()["history"]
    assert [(e["action"], e["actor"].split(" ")[0], e["comment"]) for e in history[-2:]] == [
        ("verify", "officer-li", "复查合格"),
        ("close", "officer-li", None),
    ]
