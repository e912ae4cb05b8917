"""Review-page sign-in in real Chromium: redirect, key form, strict HttpOnly session, CSRF-protected decision."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from serving.auth import ApiKeyAuth, KeyStore, SessionSigner, parse_env_keys
from serving.review import app as review_app
from serving.review.store import ReviewStore
from tests.server import served_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
LABELS = ("missing_helmet", "missing_hi_vis", "fire_smoke", "wet_floor", "heavy_machinery", "poor_housekeeping")
REVIEWER_KEY, INTAKE_KEY = "reviewer-browser-key-5e1f0a", "intake-browser-key-77c2d9"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")]


def seed_case(store: ReviewStore, *, colour: tuple[int, int, int], fire: float) -> str:
    image = Image.new("RGB", (320, 240), colour)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    hazards = {label: (fire if label == "fire_smoke" else 0.04) for label in LABELS}
    photo_id = uuid.uuid4().hex
    store.record_assessment(photo_id=photo_id, data=buffer.getvalue(), image=image,
                            cam=np.zeros((len(LABELS), 7, 7), dtype=np.float32), metadata={"site_id": "auth"},
                            assessment={"model": {"name": "hazard_photo", "version": "toy"}, "hazards": hazards,
                                        "flagged": [{"type": "fire_smoke", "threshold": 0.5}], "triage": "urgent"})
    return photo_id


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, ReviewStore, list[str]]]:
    store = ReviewStore(database_url=f"sqlite:///{tmp_path / 'review.db'}", photo_dir=tmp_path / "photos")
    ids = [seed_case(store, colour=(220, 40, 20), fire=0.95), seed_case(store, colour=(200, 90, 20), fire=0.9)]
    previous = review_app.holder.store
    keys = KeyStore(env_keys=parse_env_keys(f"reviewer:{REVIEWER_KEY},intake:{INTAKE_KEY}"),
                    path=tmp_path / "api_keys.json")
    app = ApiKeyAuth(review_app.standalone_app(store), keys=keys, signer=SessionSigner(b"b" * 32), enabled=True)
    try:
        with served_in_thread(app) as base_url:
            yield base_url, store, ids
    finally:
        review_app.holder.store = previous
        store.close()


def sign_in(page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/review/")
    assert page.url == f"{base_url}/review/sign-in?next=/review/"
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")


def test_sign_in_then_decide_with_the_keyboard(served):
    from playwright.sync_api import sync_playwright

    base_url, store, ids = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, base_url, INTAKE_KEY)
        assert "That is not a valid reviewer key." in page.content()
        assert context.cookies() == []
        sign_in(page, base_url, REVIEWER_KEY)
        page.wait_for_selector("body[data-ready=true]")
        cookies = {cookie["name"]: cookie for cookie in context.cookies()}
        assert cookies["ankang_session"]["httpOnly"] and cookies["ankang_session"]["sameSite"] == "Strict"
        assert not cookies["ankang_csrf"]["httpOnly"] and cookies["ankang_csrf"]["sameSite"] == "Strict"
        assert page.evaluate("document.cookie").count("ankang_session") == 0  # scripts cannot read the session
        page.fill("#reviewer", "王工")
        page.locator("h1").click()
        page.keyboard.press("c")
        page.wait_for_selector(f'.case.selected[data-photo-id="{ids[1]}"]')
        forged = page.evaluate("""async (id) => (await fetch('/v1/review/' + id, {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({decision: 'dismiss'})})).status""",
                               ids[1])
        page.click("#sign-out")
        page.wait_for_url(f"{base_url}/review/sign-in")
        assert context.cookies() == []
        page.goto(f"{base_url}/review/")
        assert page.url.startswith(f"{base_url}/review/sign-in")
        browser.close()
    assert forged == 403  # a script without the CSRF header is refused even with the session cookie
    history = store.case(ids[0])["history"]
    assert [(entry["decision"], entry["reviewer"]) for entry in history] == [("confirm", "王工 [key:env-1]")]
    assert store.case(ids[1])["history"] == []
