"""End to end: start the server the way `make run` does and assess a real site photo over HTTP."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.server import served

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # As `make run` would: the released models, none of the in-process fixtures' ANKANG_* settings.
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANKANG_")}
    env.update(ANKANG_DATA_DIR=str(tmp_path_factory.mktemp("var")), ANKANG_AUTH="off")
    with served(env) as (base_url, _):
        yield base_url


def first_fire_photo(photo_set: Path) -> Path:
    with open(photo_set / "manifest.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "test" and row["source"] == "xiapinquan-fire":
                return photo_set / row["image"]
    raise LookupError("no fire photo in the test split")


def test_real_fire_photo_is_assessed_over_http(server, photo_set):
    photo = first_fire_photo(photo_set)
    with open(photo, "rb") as handle:
        response = httpx.post(f"{server}/v1/photos/assess", files={"photo": (photo.name, handle, "image/jpeg")},
                              data={"site_id": "e2e"}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "hazard_photo"
    assert set(body["hazards"]) >= {"fire_smoke", "missing_helmet"}
    assert body["hazards"]["fire_smoke"] > 0.5
    assert body["triage"] == "urgent"


def test_bad_upload_gets_4xx_and_server_keeps_serving(server):
    bad = httpx.post(f"{server}/v1/photos/assess", files={"photo": ("x.jpg", b"not an image", "image/jpeg")}, timeout=10)
    assert bad.status_code == 415
    assert bad.json()["error"]["field"] == "photo"
    assert httpx.get(f"{server}/livez", timeout=5).status_code == 200


def test_metrics_and_openapi_are_served(server):
    assert "bentoml_service_request_total" in httpx.get(f"{server}/metrics", timeout=10).text
    assert "/v1/photos/assess" in httpx.get(f"{server}/docs.json", timeout=10).json()["paths"]


def test_concurrent_photos_all_succeed(server, photo_set):
    """32 uploads at once: the workers batch them; every one answers 200 with its own photo_id."""
    import asyncio

    data = first_fire_photo(photo_set).read_bytes()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            return await asyncio.gather(*[
                client.post("/v1/photos/assess", files={"photo": ("fire.jpg", data, "image/jpeg")}) for _ in range(32)])

    responses = asyncio.run(burst())
    assert [response.status_code for response in responses] == [200] * 32
    assert len({response.json()["photo_id"] for response in responses}) == 32
    assert all(response.json()["triage"] == "urgent" for response in responses)
