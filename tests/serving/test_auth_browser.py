"""Review-page sign-in in Debian Chromium against the real server (`bentoml serve`, every middleware)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from serving.photo import build_assessment
from serving.review.store import ReviewStore
from tests.server import CHROMIUM, chromium, served_review_site

LABELS = ("missing_helmet", "missing_hi_vis", "fire_smoke", "wet_floor", "heavy_machinery", "poor_housekeeping")
REVIEWER_KEY, INTAKE_KEY = "reviewer-browser-key-5e1f0a", "intake-browser-key-77c2d9"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]


def seed_case(store: ReviewStore, *, colour: tuple[int, int, int], fire: float) -> str:
    image = Image.new("RGB", (320, 240), colour)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    hazards = {label: (fire if label == "fire_smoke" else 0.04) for label in LABELS}
    photo_id = uuid.uuid4().hex
    assessment = build_assessment(
        hazards,
        dict.fromkeys(LABELS, 0.5),
        model_name="hazard_photo",
        model_version="toy",
        cam=np.zeros((len(LABELS), 7, 7), dtype=np.float32),
    )
    store.record_assessment(
        photo_id=photo_id, data=buffer.getvalue(), image=image, metadata={"site_id": "auth"}, assessment=assessment
    )
    return photo_id


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, ReviewStore, list[str]]]:
    ids: list[str] = []

    def seed(store: ReviewStore) -> None:
        ids.extend(
            [seed_case(store, colour=(220, 40, 20), fire=0.95), seed_case(store, colour=(200, 90, 20), fire=0.9)]
        )

    keys = f"reviewer:{REVIEWER_KEY}:王安全,intake:{INTAKE_KEY}"
    with served_review_site(tmp_path_factory.mktemp("auth-site") / "var", api_keys=keys, seed=seed) as (url, store):
        yield url, store, ids


def open_sign_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/review/")
    assert page.url == f"{base_url}/sign-in?next=/review/"


def submit_key(page, key: str) -> None:
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_the_served_page_keeps_referrers_same_origin(site):
    """`no-referrer` made Chromium send `Origin: null` on the sign-in POST."""
    response = httpx.get(f"{site[0]}/review/sign-in", timeout=10)
    assert response.headers["referrer-policy"] == "same-origin"


def test_sign_in_then_decide_with_the_keyboard(site):
    base_url, store, ids = site
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        open_sign_in(page, base_url)
        submit_key(page, INTAKE_KEY)
        assert "Intake keys are for machines" in page.inner_text("[role=alert]")
        assert "ankang_session" not in {cookie["name"] for cookie in context.cookies()}
        submit_key(page, REVIEWER_KEY)
        page.wait_for_selector("body[data-ready=true]")
        assert page.url == f"{base_url}/review/"
        assert page.inner_text("#signed-in") == "王安全 [key:env-1]"
        assert page.locator("#reviewer").count() == 0  # no free-text name to fill in any more
        cookies = {cookie["name"]: cookie for cookie in context.cookies()}
        assert cookies["ankang_session"]["httpOnly"] and cookies["ankang_session"]["sameSite"] == "Strict"
        assert not cookies["ankang_csrf"]["httpOnly"] and cookies["ankang_csrf"]["sameSite"] == "Strict"
        assert page.evaluate("document.cookie").count("ankang_session") == 0  # scripts cannot read the session
        page.locator("h1").click()
        page.keyboard.press("c")
        page.wait_for_selector(f'.case.selected[data-photo-id="{ids[1]}"]')
        forged = page.evaluate(
            """async (id) => (await fetch('/v1/review/' + id, {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({decision: 'dismiss'})})).status""",
            ids[1],
        )
        page.click("#sign-out")
        page.wait_for_url(f"{base_url}/sign-in")
        assert not {"ankang_session", "ankang_csrf"} & {cookie["name"] for cookie in context.cookies()}
        page.goto(f"{base_url}/review/")
        assert page.url.startswith(f"{base_url}/sign-in")
    assert forged == 403  # a script without the CSRF header is refused even with the session cookie
    history = store.case(ids[0])["history"]
    assert [(entry["decision"], entry["reviewer"]) for entry in history] == [
        ("confirm", {"key_id": "env-1", "holder": "王安全"})
    ]
    assert store.case(ids[1])["history"] == []


def test_a_stale_sign_in_form_answers_a_page_saying_why(site):
    base_url, _store, _ids = site
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        refused = []
        page.on(
            "console",
            lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
        )
        open_sign_in(page, base_url)
        assert page.evaluate("getComputedStyle(document.body).maxWidth") == "480px"  # its style is not blocked
        context.clear_cookies()  # the form's nonce is gone, as after a browser restart
        submit_key(page, REVIEWER_KEY)
        assert "This sign-in form has expired or did not come from this site" in page.inner_text("[role=alert]")
        assert page.locator("input[name=key]").count() == 1  # and a fresh form to try again
        submit_key(page, REVIEWER_KEY)
        page.wait_for_selector("body[data-ready=true]")
        assert page.inner_text("#signed-in") == "王安全 [key:env-1]"
    assert refused == []
