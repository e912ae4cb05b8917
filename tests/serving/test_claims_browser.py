"""The officers' claims pages in real Chromium, served by uvicorn over the whole service (auth on): the
queue most urgent first with working filters and local times, the figures page with the closing and
satisfaction rates of the store, sign-in for anyone without a session, no external host."""

from __future__ import annotations

import uuid
from pathlib import Path

import bentoml
import pytest

from serving.auth.sign_in import SIGN_IN_PATH
from serving.claims.figures import CachedFigures
from serving.orders.receipts import RateLimiter
from tests.serving.test_auth_api import auth_on
from tests.serving.test_orders_browser import CHROMIUM, CHROMIUM_ARGS, base_url  # noqa: F401

SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "claims"
REVIEWER, INTAKE = "reviewer-claims-key-5d1e", "intake-claims-key-9a7b"
OFFICER, DESK = {"Authorization": f"Bearer {REVIEWER}"}, {"Authorization": f"Bearer {INTAKE}"}

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")]


@pytest.fixture
def secured(api, tmp_path, monkeypatch):
    monkeypatch.setattr(bentoml.get_current_service().backends, "receipt_lookups", RateLimiter(limit=10_000))
    monkeypatch.setattr(bentoml.get_current_service().backends, "claim_figures", CachedFigures(wait_seconds=120))
    monkeypatch.setattr(bentoml.get_current_service().backends, "feedback_limiter", RateLimiter(limit=10_000))
    with auth_on(api, tmp_path, api_keys=f"reviewer:{REVIEWER}:officer-zhao,intake:{INTAKE}") as client:
        yield client


def file_claim(client, enterprise: str, **fields) -> dict:
    body = {"channel": "walk_in", "enterprise_id": enterprise, "type": "wage_arrears", "description": "欠薪", **fields}
    response = client.post("/v1/claims/", json=body, headers=DESK)
    assert response.status_code == 201, response.text
    return response.json()


def test_queue_and_figures_pages_show_the_store(secured, base_url):  # noqa: F811
    from playwright.sync_api import sync_playwright

    district = f"区-{uuid.uuid4().hex[:6]}"
    arrears = [file_claim(secured, f"E-{district}", district=district, workers=3) for _ in range(4)]
    injury = file_claim(secured, f"E-{district}-2", district=district, type="work_injury")
    case_id = arrears[0]["case_id"]
    for body in (
        {"action": "dispatch", "handler": "arbitration"},
        {"action": "handle"},
        {"action": "close", "outcome": "recovered", "recovered_cny": 30000},
    ):
        assert secured.post(f"/v1/claims/{case_id}/transitions", json=body, headers=OFFICER).status_code == 201
    for claim, stars in zip(arrears, (5, 4, 2, 5)):
        secured.post(f"/v1/reports/{claim['receipt']}/feedback", json={"satisfied": stars, "resolved": True})
    figures = secured.get("/v1/claims/figures", headers=OFFICER).json()
    ours = {entry["key"]: entry for entry in figures["by"]["district"]}[district]
    assert (ours["closing_rate"], ours["satisfaction_rate"]) == (0.8, 0.75)
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, extra_http_headers=OFFICER)
        page.on("request", lambda request: None if request.url.startswith(base_url) else outside.append(request.url))

        assert page.goto(f"{base_url}/claims/figures").status == 200
        assert page.inner_text("#closing-rate") == f"{figures['closing_rate'] * 100:.1f}%"
        assert page.inner_text("#satisfaction-rate") == f"{figures['satisfaction_rate'] * 100:.1f}%"
        row = page.locator(f'#by-district tr[data-key="{district}"]')
        assert row.locator(".closing").inner_text() == "80.0%" and row.locator(".satisfaction").inner_text() == "75.0%"
        assert page.locator("#weekly .week").count() == 12
        assert int(page.locator("#weekly .week").last.get_attribute("data-received")) >= 5
        stamp = page.locator("time").first
        assert stamp.inner_text() != stamp.get_attribute("datetime")  # shown in local time
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "claims_figures.png"), full_page=True)

        assert page.goto(f"{base_url}/claims/?district={district}&state=all").status == 200
        rows = page.locator("#queue tr[data-case]")
        assert rows.count() == 2 and rows.first.get_attribute("data-case") == injury["case_id"]  # injuries first
        assert rows.nth(1).locator(".workers").inner_text() == "12" and rows.nth(1).locator(".mass").count() == 1
        page.select_option("select[name=type]", "work_injury")
        page.click("#filters button[type=submit]")
        page.wait_for_url("**type=work_injury**")
        assert page.locator("#queue tr[data-case]").count() == 1
        page.screenshot(path=str(SCREENSHOTS / "claims_queue.png"), full_page=True)

        anonymous = browser.new_page()
        anonymous.goto(f"{base_url}/claims/figures")
        assert anonymous.url == f"{base_url}{SIGN_IN_PATH}?next=/claims/figures"
        browser.close()
    assert outside == []
