"""The review API through the whole service (`api` fixture, toy colour model): assess → queue → decide."""

from __future__ import annotations

import io
import re
import uuid

import numpy as np
import pytest
from PIL import Image

from runtime.errors import InputError
from tests.serving.conftest import encode_image
from tests.serving.test_auth_api import auth_on

RED, GREEN, BLUE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)


def submit(api, colour, *, site: str, size=(64, 48), data: bytes | None = None, headers: dict | None = None) -> str:
    data = data if data is not None else encode_image(colour, size=size)
    response = api.post(
        "/v1/photos/assess",
        files={"photo": ("p.jpg", data, "image/jpeg")},
        data={"site_id": site},
        headers=headers or {},
    )
    assert response.status_code == 200, response.text
    return response.json()["photo_id"]


def textured(seed: int, *, size=(80, 60), quality: int = 90) -> bytes:
    """A reddish (fire) photo with its own texture: one seed is one scene, at any size or quality."""
    noise = np.random.default_rng(seed).integers(0, 90, size=(6, 8, 1), dtype=np.uint8)
    pixels = np.concatenate([220 + noise // 3, noise, noise], axis=2).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture
def site() -> str:
    return f"site-{uuid.uuid4().hex[:8]}"


def queue(api, **params):
    response = api.get("/v1/review/queue", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_assessed_photos_become_cases_most_urgent_first(api, site):
    blue = submit(api, BLUE, site=site)
    red = submit(api, RED, site=site)
    grey = submit(api, GREY, site=site)
    page = queue(api, site=site)
    assert [item["photo_id"] for item in page["items"]] == [red, blue]
    assert page["items"][0]["triage"] == "urgent" and page["items"][0]["flagged"][0]["type"] == "fire_smoke"
    assert page["items"][0]["metadata"]["site_id"] == site
    assert page["counts"]["open"] == 2 and page["counts"]["clear"] == 1
    assert [item["photo_id"] for item in queue(api, site=site, status="clear")["items"]] == [grey]
    assert [item["photo_id"] for item in queue(api, site=site, hazard="wet_floor")["items"]] == [blue]


KEYS = "intake:intake-review-key-0123,reviewer:wang-review-key-4567:王安全,admin:li-admin-key-89ab:李管理"


def test_decisions_record_the_signed_in_key_and_its_holder(api, site, tmp_path):
    with auth_on(api, tmp_path, api_keys=KEYS) as client:
        case = submit(client, BLUE, site=site, headers={"Authorization": "Bearer intake-review-key-0123"})
        first = client.post(
            f"/v1/review/{case}", json={"decision": "confirm"}, headers={"Authorization": "Bearer wang-review-key-4567"}
        )
        assert first.status_code == 201, first.text
        assert first.json()["hazards"] == ["wet_floor"] and first.json()["status"] == "confirmed"
        assert first.json()["reviewer"] == {"key_id": "env-2", "holder": "王安全"}
        second = client.post(
            f"/v1/review/{case}",
            headers={"Authorization": "Bearer li-admin-key-89ab"},
            json={"decision": "correct", "hazards": ["wet_floor", "poor_housekeeping"], "comment": "also cluttered"},
        )
        assert second.status_code == 201, second.text
        me = client.get("/v1/review/me", headers={"Authorization": "Bearer wang-review-key-4567"}).json()
        record = client.get(f"/v1/review/{case}", headers={"Authorization": "Bearer wang-review-key-4567"}).json()
    assert me == {"key_id": "env-2", "holder": "王安全", "role": "reviewer", "via": "key"}
    assert record["status"] == "corrected"
    assert [(h["decision"], h["reviewer"], h["hazards"]) for h in record["history"]] == [
        ("confirm", {"key_id": "env-2", "holder": "王安全"}, ["wet_floor"]),
        ("correct", {"key_id": "env-3", "holder": "李管理"}, ["wet_floor", "poor_housekeeping"]),
    ]


def test_decisions_are_appended_to_the_history(api, site):
    case = submit(api, BLUE, site=site)
    assert api.post(f"/v1/review/{case}", json={"decision": "confirm"}).status_code == 201
    second = api.post(
        f"/v1/review/{case}",
        json={"decision": "correct", "hazards": ["wet_floor", "poor_housekeeping"], "comment": "also cluttered"},
    )
    assert second.status_code == 201, second.text
    record = api.get(f"/v1/review/{case}").json()
    assert record["status"] == "corrected"
    assert [(h["decision"], h["hazards"]) for h in record["history"]] == [
        ("confirm", ["wet_floor"]),
        ("correct", ["wet_floor", "poor_housekeeping"]),
    ]
    assert record["history"][0]["reviewer"] == {"key_id": "anonymous", "holder": None}  # ANKANG_AUTH=off
    assert queue(api, site=site)["total"] == 0
    assert queue(api, site=site, status="corrected")["items"][0]["photo_id"] == case


@pytest.mark.parametrize(
    "body, field, status, message",
    [
        ({"decision": "approve"}, "decision", 422, "unknown decision 'approve'"),
        ({"decision": "correct"}, "hazards", 422, "`correct` needs the hazard types actually present"),
        ({"decision": "correct", "hazards": ["lava"]}, "hazards", 422, r"unknown hazard type\(s\) \['lava'\]"),
        ({"decision": "dismiss", "hazards": ["wet_floor"]}, "hazards", 422, "only given with `correct`"),
        ({"decision": "confirm", "apply_to_group": "yes"}, "apply_to_group", 422, "true or false"),
        (
            {"decision": "confirm", "reviewer": "王工"},
            "reviewer",
            422,
            "do not send a reviewer: decisions are recorded as the signed-in key and the person holding it",
        ),
        (["confirm"], "body", 422, "send a JSON object"),
    ],
)
def test_bad_decisions_name_the_field(api, site, body, field, status, message):
    case = submit(api, BLUE, site=site)
    response = api.post(f"/v1/review/{case}", json=body)
    assert response.status_code == status
    assert response.json()["error"]["field"] == field
    assert re.search(message, response.json()["error"]["message"])
    assert api.get(f"/v1/review/{case}").json()["history"] == []


def test_invalid_json_and_unknown_photo(api, site):
    case = submit(api, BLUE, site=site)
    response = api.post(f"/v1/review/{case}", content=b"{not json")
    assert response.status_code == 400 and response.json()["error"]["field"] == "body"
    response = api.post("/v1/review/0123456789abcdef", json={"decision": "confirm"})
    assert response.status_code == 404
    assert response.json()["error"] == {"field": "photo_id", "message": "no case with photo_id '0123456789abcdef'"}
    assert api.get("/v1/review/0123456789abcdef/thumb").status_code == 404


@pytest.mark.parametrize(
    "params, field",
    [
        ({"status": "pending"}, "status"),
        ({"hazard": "lava"}, "hazard"),
        ({"from": "yesterday"}, "from"),
        ({"limit": "0"}, "limit"),
        ({"offset": "-1"}, "offset"),
    ],
)
def test_bad_queue_filters_name_the_field(api, params, field):
    response = api.get("/v1/review/queue", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_date_range_filter(api, site):
    case = submit(api, GREEN, site=site)
    created = api.get(f"/v1/review/{case}").json()["created_at"][:10]
    assert [i["photo_id"] for i in queue(api, site=site, **{"from": created, "to": created})["items"]] == [case]
    assert queue(api, site=site, **{"from": "2001-01-01", "to": "2001-01-02"})["total"] == 0


def test_same_scene_twice_is_one_group_closed_by_one_decision(api, site):
    first = submit(api, RED, site=site, data=textured(3))
    again = submit(api, RED, site=site, data=textured(3, size=(160, 120), quality=60))
    other = submit(api, RED, site=site, data=textured(7))
    record = api.get(f"/v1/review/{again}").json()
    assert record["group_id"] == api.get(f"/v1/review/{first}").json()["group_id"]
    assert api.get(f"/v1/review/{other}").json()["group_id"] == other
    response = api.post(f"/v1/review/{again}", json={"decision": "rectified", "apply_to_group": True})
    assert response.status_code == 201
    assert sorted(response.json()["applied_to"]) == sorted([again, first])
    assert [item["photo_id"] for item in queue(api, site=site)["items"]] == [other]


def test_thumbnail_photo_and_heatmap_come_from_the_store(api, site):
    case = submit(api, RED, site=site, size=(800, 600))
    thumb = api.get(f"/v1/review/{case}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)
    display = Image.open(io.BytesIO(api.get(f"/v1/review/{case}/photo").content))
    assert display.size == (800, 600)
    heat = api.get(f"/v1/review/{case}/heatmap/fire_smoke")
    assert heat.status_code == 200 and heat.headers["content-type"] == "image/png"
    overlay = Image.open(io.BytesIO(heat.content))
    assert overlay.mode == "RGBA" and overlay.size == display.size
    assert api.get(f"/v1/review/{case}/heatmap/lava").json()["error"]["field"] == "hazard"


def test_the_page_and_its_assets_are_served(api):
    page = api.get("/review/")
    assert page.status_code == 200 and "隐患复核" in page.text and "/review/static/review.js" in page.text
    assert api.get("/review/static/review.js").status_code == 200
    assert api.get("/review/static/review.css").headers["content-type"].startswith("text/css")
    types = api.get("/v1/review/taxonomy").json()["types"]
    assert {"type": "fire_smoke", "name_zh": "明火烟雾"}.items() <= types[2].items()


def test_unknown_review_paths_and_methods_answer_in_json(api):
    response = api.get("/v1/review/abc/nothing/here")
    assert response.status_code == 404 and response.json()["error"]["field"] == "path"
    response = api.delete("/v1/review/queue")
    assert response.status_code == 405 and "DELETE is not allowed" in response.json()["error"]["message"]


def test_the_reviewer_comes_from_the_principal_never_from_the_request():
    from serving.auth import Principal
    from serving.review.decisions import Reviewer, reviewer_of

    assert reviewer_of(Principal("ab12cd34", "reviewer", via="session", holder="王安全")) == Reviewer(
        "ab12cd34", "王安全"
    )
    assert reviewer_of(Principal("env-1", "reviewer")) == Reviewer("env-1", None)
    with pytest.raises(InputError, match="sign in at /sign-in or send a reviewer API key"):
        reviewer_of(None)
