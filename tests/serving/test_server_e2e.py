"""End to end: start the server the way `make run` does and assess a real site photo over HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.server import free_port, start_server, stop_server, wait_until_ready

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def served_with_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    # As `make run` would: the released models, none of the in-process fixtures' ANKANG_* settings.
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANKANG_")}
    env.update(
        ANKANG_DATA_DIR=str(tmp_path_factory.mktemp("var")),
        ANKANG_AUTH="off",
        # its own Prometheus multiprocess directory: another server starting on this machine
        # (another test run) would otherwise empty the shared one under ~/bentoml mid-test
        BENTOML_HOME=str(tmp_path_factory.mktemp("bentoml_home")),
    )
    log_path = tmp_path_factory.mktemp("log") / "server.log"
    port = free_port()
    with open(log_path, "wb") as log:
        process = start_server(env, port=port, log=log)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", process)
            yield f"http://127.0.0.1:{port}", log_path
        finally:
            stop_server(process)


@pytest.fixture(scope="module")
def server(served_with_log) -> str:
    return served_with_log[0]


def random_photo(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((320, 240)).save(buffer, format="JPEG")
    return buffer.getvalue()


def first_fire_photo(photo_set: Path) -> Path:
    with open(photo_set / "manifest.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "test" and row["source"] == "xiapinquan-fire":
                return photo_set / row["image"]
    raise LookupError("no fire photo in the test split")


def served_in_process(photo: bytes) -> dict:
    """What serving's own PhotoModel answers for these bytes, outside the server."""
    from serving.images import decode_photo
    from serving.photo import PhotoModel

    model = PhotoModel(Path(__file__).resolve().parents[2] / "models" / "hazard_photo")
    image = decode_photo(photo)
    answer = model.assessment(
        model.run_batch(model.card.preprocess(image)[None])[0], width=image.width, height=image.height
    )
    return answer.to_response()


def test_real_fire_photo_is_assessed_over_http(server, photo_set):
    """The server answers a real fire photo exactly as the released model does in-process (which
    photos the model gets right is the card's audit, not this test's)."""
    photo = first_fire_photo(photo_set)
    with open(photo, "rb") as handle:
        response = httpx.post(
            f"{server}/v1/photos/assess",
            files={"photo": (photo.name, handle, "image/jpeg")},
            data={"site_id": "e2e"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    body, expected = response.json(), served_in_process(photo.read_bytes())
    assert body["model"]["name"] == "hazard_photo" and set(body["hazards"]) >= {"fire_smoke", "missing_helmet"}
    assert body["hazards"] == pytest.approx(expected["hazards"], abs=1e-5)
    assert body["triage"] == expected["triage"]
    assert [item["type"] for item in body["flagged"]] == [item["type"] for item in expected["flagged"]]


def test_bad_upload_gets_4xx_and_server_keeps_serving(server):
    bad = httpx.post(
        f"{server}/v1/photos/assess", files={"photo": ("x.jpg", b"not an image", "image/jpeg")}, timeout=10
    )
    assert bad.status_code == 415
    assert bad.json()["error"]["field"] == "photo"
    assert httpx.get(f"{server}/livez", timeout=5).status_code == 200


def test_metrics_and_openapi_are_served(server):
    assert "ankang_http_requests_total" in httpx.get(f"{server}/metrics", timeout=10).text
    assert "/v1/photos/assess" in httpx.get(f"{server}/docs.json", timeout=10).json()["paths"]


def photos_assessed(server: str) -> float:
    response = httpx.get(f"{server}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "ankang_photos_assessed_total"
    )


def test_metrics_add_up_over_both_workers(server):
    """Whichever worker answers the scrape, it counts the photos every worker assessed."""
    before = photos_assessed(server)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            responses = await asyncio.gather(
                *[
                    client.post("/v1/photos/assess", files={"photo": ("p.jpg", random_photo(seed), "image/jpeg")})
                    for seed in range(12)
                ]
            )
        return [response.status_code for response in responses]

    assert asyncio.run(burst()) == [200] * 12
    assert [photos_assessed(server) - before for _ in range(6)] == [12] * 6


def test_a_client_error_logs_one_info_line_and_no_traceback(served_with_log):
    server, log_path = served_with_log
    request_id = "e2e-client-error-0001"
    start = log_path.stat().st_size  # (a start-up race of the two workers may have logged before: issue 14.5)
    response = httpx.post(
        f"{server}/v1/photos/assess",
        files={"image": ("x.jpg", b"x", "image/jpeg")},
        headers={"X-Request-ID": request_id},
        timeout=10,
    )
    assert response.status_code == 400
    httpx.get(f"{server}/livez", timeout=5)  # the log line is written once the response is sent
    with open(log_path, "rb") as log:
        log.seek(start)
        lines = log.read().decode("utf-8", errors="replace").splitlines()
    mentions = [line for line in lines if request_id in line]
    assert len(mentions) == 1, mentions
    entry = json.loads(mentions[0])
    assert (entry["level"], entry["status"], entry["path"]) == ("info", 400, "/v1/photos/assess")
    assert not [line for line in lines if "Traceback" in line or "Exception on" in line]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")
def test_the_docs_page_renders_and_requests_nothing_off_host(server):
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{server}/", wait_until="networkidle")
        assert page.wait_for_selector("h2.title").inner_text().startswith("Ankang API (安康)")
        page.wait_for_selector(".opblock-summary-path[data-path='/v1/photos/assess']")
        assert page.url == f"{server}/docs"
        assert page.locator("button.authorize").count() == 1  # the bearer scheme: "Try it out" can send a key
        browser.close()
    host = urlsplit(server).netloc
    assert requested and [url for url in requested if urlsplit(url).netloc != host] == []


def test_concurrent_photos_all_succeed(server, photo_set):
    """32 uploads at once: the workers batch them; every one answers 200 with its own photo_id."""
    import asyncio

    data = first_fire_photo(photo_set).read_bytes()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            return await asyncio.gather(
                *[
                    client.post("/v1/photos/assess", files={"photo": ("fire.jpg", data, "image/jpeg")})
                    for _ in range(32)
                ]
            )

    responses = asyncio.run(burst())
    assert [response.status_code for response in responses] == [200] * 32
    assert len({response.json()["photo_id"] for response in responses}) == 32
    expected = served_in_process(data)  # batched with 31 others, each answer is the photo's own
    assert all(response.json()["triage"] == expected["triage"] for response in responses)
    assert all(response.json()["hazards"] == pytest.approx(expected["hazards"], abs=1e-5) for response in responses)
