"""The union pages in real Chromium over the whole service (auth on): the grade distribution as SVG,
filters, a union's factors, the weekly review and its printable report, local times, sign-in."""

from __future__ import annotations

import io
import uuid

import pandas as pd
import pytest

from tests.serving.test_auth_api import auth_on
from tests.serving.test_orders_browser import CHROMIUM, CHROMIUM_ARGS, base_url  # noqa: F401  (fixture)
from tests.serving.test_risk_scorer import low_risk
from training.unions.population import generate_province

ADMIN, REVIEWER, INTAKE = "admin-unions-key-5c1d", "reviewer-unions-key-9e2f", "intake-unions-key-33aa"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")]


@pytest.fixture
def secured(api, tmp_path):
    keys = f"admin:{ADMIN}:officer-wang,reviewer:{REVIEWER}:officer-li,intake:{INTAKE}"
    with auth_on(api, tmp_path, api_keys=keys) as client:
        yield client


def as_(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def seeded_province(client) -> tuple[str, str]:
    """Eight unions over 300 scored enterprises, graded; then one enterprise scored into tier 5."""
    province = generate_province(unions=8, enterprises=300, seed=int(uuid.uuid4().int % 10_000))
    suffix = uuid.uuid4().hex[:6]
    profiles = province.enterprises.drop(columns=["tier"])
    profiles["enterprise_id"] += f"-{suffix}"
    scored = client.post(
        "/v1/enterprises/score-file",
        files={"file": ("p.csv", profiles.to_csv(index=False).encode(), "text/csv")},
        headers=as_(INTAKE),
    )
    assert scored.status_code == 200, scored.text
    for row in province.unions.to_dict("records"):
        body = {**row, "union_id": f"{row['union_id']}-{suffix}", "parent_id": None}
        body["enterprise_ids"] = [f"{e}-{suffix}" for e in row["enterprise_ids"].split(";")]
        assert client.post("/v1/unions", json=body, headers=as_(ADMIN)).status_code == 201
    union_id = f"{province.unions['union_id'].iloc[0]}-{suffix}"
    tiers = pd.read_csv(io.BytesIO(scored.content)).set_index("enterprise_id")["tier"]
    covered = [f"{e}-{suffix}" for e in province.unions["enterprise_ids"].iloc[0].split(";")]
    target = next(e for e in covered if tiers[e] <= 3)  # so it is newly at tier >= 4 this week
    worse = low_risk(target, mass_incident_36m=1)
    client.post("/v1/enterprises/score", json={"enterprises": [worse]}, headers=as_(INTAKE))
    assert client.post("/v1/unions/grade", headers=as_(ADMIN)).status_code == 200
    return union_id, target


def test_union_pages_show_grades_factors_and_the_weekly_review(secured, base_url):  # noqa: F811
    from playwright.sync_api import sync_playwright

    union_id, target = seeded_province(secured)
    union = secured.get(f"/v1/unions/{union_id}", headers=as_(REVIEWER)).json()
    distribution = secured.get("/v1/unions", headers=as_(REVIEWER)).json()["distribution"]
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai")
        page.on("request", lambda request: None if request.url.startswith(base_url) else outside.append(request.url))
        page.goto(f"{base_url}/unions/")  # not signed in: sent to sign in, and back
        assert page.url == f"{base_url}/sign-in?next=/unions/"
        page.fill("input[name=key]", REVIEWER)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/unions/")

        assert page.inner_text("nav .who") == "officer-li" and page.locator("#sign-out").count() == 1
        row = page.locator(f'#by-type .row[data-label="{union["union_type"]}"]')
        assert int(row.get_attribute("data-total")) == sum(distribution["by_type"][union["union_type"]].values())
        assert row.locator("rect").first.bounding_box()["width"] > 0
        fill = page.evaluate("getComputedStyle(document.querySelector('#by-layer rect.g5, #by-layer rect')).fill")
        assert fill.startswith("rgb(")  # unions.css applied
        page.select_option("select[name=grade]", str(union["grade"]))
        page.click("form.filters button")
        page.wait_for_url(f"**/unions/?grade={union['grade']}**")
        assert page.locator(f'#unions tr[data-union="{union_id}"]').count() == 1
        assert page.locator("#unions tr[data-union]").count() == len(
            [u for u in secured.get("/v1/unions", params={"grade": union["grade"], "limit": 500},
                                    headers=as_(REVIEWER)).json()["unions"]]
        )  # fmt: skip

        page.click(f'#unions tr[data-union="{union_id}"] a')
        page.wait_for_selector("#factors")
        assert page.get_attribute("#grade", "data-grade") == str(union["grade"])
        shown = page.locator("#factors tr[data-factor]").count()
        assert shown == len(union["factors"]) == 7
        assert page.locator(f'#enterprises tr[data-enterprise="{target}"]').count() == 1
        graded = page.locator("header time").first
        assert graded.inner_text() != graded.get_attribute("datetime")  # shown in local time

        page.click(f'#enterprises tr[data-enterprise="{target}"] a')
        page.wait_for_selector("#tier-history")
        assert page.get_attribute("#tier", "data-tier") == "5"
        bars = page.locator("#tier-history rect")
        assert bars.count() == 2 and bars.last.get_attribute("data-tier") == "5"  # the file's score, then the 5

        page.goto(f"{base_url}/unions/review-meeting")
        assert page.locator(f'#newly-high tr[data-enterprise="{target}"]').count() == 1
        assert "mass_incident_36m" in page.locator(f'#newly-high tr[data-enterprise="{target}"]').inner_text()
        assert page.locator("#trend tr[data-week]").count() == 12
        page.click("text=打印版 printable report")
        page.wait_for_url("**/unions/review-meeting/report?week=**")
        assert page.locator("nav").count() == 0 and page.locator("button", has_text="打印 Print").count() == 1
        pdf = page.pdf(format="A4")  # Chromium prints it: the report is a document, not only a page
        assert pdf[:4] == b"%PDF" and len(pdf) > 10_000
        browser.close()
    assert outside == []
