"""The review page in real Chromium: keyboard decisions persist across a reload."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from serving.review import app as review_app
from serving.review.store import ReviewStore
from tests.conftest import PHOTO_SET
from tests.server import served_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "review"
LABELS = ("missing_helmet", "missing_hi_vis", "fire_smoke", "wet_floor", "heavy_machinery", "poor_housekeeping")
# (flags, triage, minutes after T0); urgent fire first, then general hazards by probability.
CASES = [({"fire_smoke": 0.97}, "urgent"), ({"wet_floor": 0.81}, "review"), ({"missing_helmet": 0.66}, "review"),
         ({"poor_housekeeping": 0.58}, "review")]

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")]


def scene(seed: int) -> tuple[bytes, Image.Image]:
    """A real site photo when the photo set is linked (for a telling screenshot), else a seeded texture."""
    if (PHOTO_SET / "manifest.csv").is_file():
        path = sorted((PHOTO_SET / "images" / "panly23-ppe").glob("*.jpg"))[seed * 7]
        return path.read_bytes(), Image.open(path).convert("RGB")
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize((640, 480), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), image


def seed_cases(store: ReviewStore) -> list[str]:
    ids = []
    for index, (flags, triage) in enumerate(CASES):
        hazards = {label: flags.get(label, 0.04) for label in LABELS}
        flagged = [{"type": label, "threshold": 0.5} for label in LABELS if hazards[label] >= 0.5]
        cam = np.zeros((len(LABELS), 7, 7), dtype=np.float32)
        cam[:, 1 + index, 2:5] = 3.0  # a hot band, so the overlay has a visible spot
        data, image = scene(index)
        photo_id = uuid.uuid4().hex
        store.record_assessment(photo_id=photo_id, data=data, image=image, cam=cam, metadata={"site_id": f"site-{index}"},
                                assessment={"model": {"name": "hazard_photo", "version": "toy"}, "hazards": hazards,
                                            "flagged": flagged, "triage": triage},
                                created_at=dt.datetime(2026, 11, 26, 8, index))
        ids.append(photo_id)
    return ids


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, ReviewStore, list[str]]]:
    store = ReviewStore(database_url=f"sqlite:///{tmp_path / 'review.db'}", photo_dir=tmp_path / "photos")
    ids = seed_cases(store)
    previous = review_app.holder.store
    try:
        with served_in_thread(review_app.standalone_app(store)) as base_url:
            yield base_url, store, ids
    finally:
        review_app.holder.store = previous
        store.close()


def counts(page) -> dict[str, int]:
    return {link.get_attribute("data-status"): int(link.inner_text().rsplit("·", 1)[1])
            for link in page.locator("#counts a").all()}


def test_keyboard_confirm_and_correct_persist_after_reload(served):
    from playwright.sync_api import sync_playwright

    base_url, store, ids = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base_url}/review/")
        page.wait_for_selector("body[data-ready=true]")
        assert page.locator(".case").count() == 4
        assert page.locator(".case.selected").get_attribute("data-photo-id") == ids[0]
        page.wait_for_selector("#detail .heat:not([hidden])")
        page.fill("#reviewer", "王工")
        page.locator("h1").click()  # leave the name field so keys act on the queue

        page.keyboard.press("c")  # confirm the urgent fire photo
        page.wait_for_selector(f'.case.selected[data-photo-id="{ids[1]}"]')
        page.keyboard.press("x")  # correct the wet-floor photo: it is poor housekeeping, not wet
        page.keyboard.press("4")
        page.keyboard.press("6")
        page.keyboard.press("Enter")
        page.wait_for_selector(f'.case.selected[data-photo-id="{ids[2]}"]')
        page.wait_for_function("document.querySelector('#detail .heat').complete")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "queue-after-decisions.png"), full_page=True)

        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert counts(page) == {"open": 2, "clear": 0, "confirmed": 1, "corrected": 1, "dismissed": 0, "rectified": 0}
        page.goto(f"{base_url}/review/?status=decided")
        page.wait_for_selector("body[data-ready=true]")
        statuses = {node.get_attribute("data-photo-id"): node.get_attribute("data-status") for node in page.locator(".case").all()}
        assert statuses == {ids[0]: "confirmed", ids[1]: "corrected"}
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base_url}/review/")
        page.wait_for_selector("body[data-ready=true]")
        page.screenshot(path=str(SCREENSHOTS / "queue-phone.png"), full_page=True)
        browser.close()

    history = store.case(ids[1])["history"]
    assert [(h["decision"], h["hazards"], h["reviewer"]) for h in history] == [("correct", ["poor_housekeeping"], "王工")]
    assert store.case(ids[0])["history"][0]["hazards"] == ["fire_smoke"]


def test_the_queue_keeps_going_past_the_first_page(served):
    from playwright.sync_api import sync_playwright

    base_url, _store, ids = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base_url}/review/?limit=2")
        page.wait_for_selector("body[data-ready=true]")
        assert page.locator(".case").count() == 2
        page.fill("#reviewer", "李工")
        page.locator("h1").click()
        for expected_next in ids[1:3]:
            page.keyboard.press("d")
            page.wait_for_selector(f'.case.selected[data-photo-id="{expected_next}"]')
        assert [node.get_attribute("data-photo-id") for node in page.locator(".case").all()] == ids[2:]
        assert "2 例 cases" in page.inner_text("#queue-summary")
        browser.close()
