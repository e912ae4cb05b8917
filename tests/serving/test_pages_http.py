"""The officers' and enterprises' pages over HTTP on the whole service (toy photo model, auth on, signed
in through the sign-in form as a browser is): issue 23's defects that do not need a browser to show."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from tests.serving.conftest import encode_image
from tests.serving.test_auth_api import auth_on

RED = (255, 0, 0)
KEYS = {
    "intake": "intake-pages-key-6a1f",
    "reviewer": "reviewer-pages-key-2b7c",
    "enterprise": "enterprise-pages-key-8d3e",
    "other": "enterprise-pages-key-4f9a",
}


@pytest.fixture
def site(api: TestClient, tmp_path: Path) -> Iterator[tuple[TestClient, dict, str]]:
    enterprise, other = f"E-{uuid.uuid4().hex[:8]}", f"E-{uuid.uuid4().hex[:8]}"
    inline = (
        f"intake:{KEYS['intake']},reviewer:{KEYS['reviewer']}:王安全,"
        f"enterprise:{KEYS['enterprise']}:{enterprise},enterprise:{KEYS['other']}:{other}"
    )
    headers = {name: {"Authorization": f"Bearer {key}"} for name, key in KEYS.items()}
    with auth_on(api, tmp_path, api_keys=inline) as client:
        yield client, headers, enterprise


def sign_in(client: TestClient, key: str, next_path: str = "") -> str:
    """Sign in through the form as a browser does; the answer's Location."""
    client.cookies.clear()
    form = client.get("/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = client.post("/sign-in", data={"key": key, "next": next_path, "csrf": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def csrf(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies.get("ankang_csrf")}


def new_order(
    api: TestClient, headers: dict, enterprise: str, *, photo: bytes | None = None, **fields
) -> tuple[dict, bytes]:
    photo = photo or encode_image(RED)
    assessed = api.post(
        "/v1/photos/assess", files={"photo": ("fire.jpg", photo, "image/jpeg")}, headers=headers["intake"]
    ).json()
    api.post(f"/v1/review/{assessed['photo_id']}", json={"decision": "confirm"}, headers=headers["reviewer"])
    order = api.post(
        "/v1/orders/",
        json={"photo_id": assessed["photo_id"], "enterprise_id": enterprise, **fields},
        headers=headers["reviewer"],
    )
    assert order.status_code == 201, order.text
    return order.json(), photo


def another_scene() -> bytes:
    """Bright on the left, dark on the right: every dHash bit set, where the flat red original has none."""
    ramp = np.tile(np.linspace(250, 5, 96, dtype=np.uint8), (72, 1))
    buffer = io.BytesIO()
    Image.fromarray(np.stack([ramp] * 3, axis=-1)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_an_enterprise_signs_in_to_its_own_orders_with_their_deadlines(site):
    """Item 2: enterprises had no page at all."""
    api, headers, enterprise = site
    mine, _ = new_order(api, headers, enterprise)
    theirs, _ = new_order(api, headers, f"E-{uuid.uuid4().hex[:8]}")
    assert sign_in(api, KEYS["enterprise"], "/orders/") == "/orders/"
    page = api.get("/orders/")
    assert page.status_code == 200 and "本企业整改单" in page.text
    assert f'href="/orders/{mine["id"]}"' in page.text and theirs["id"] not in page.text
    assert f'datetime="{mine["due_at"]}"' in page.text  # the deadline, as local time in the browser
    order = api.get(f"/orders/{mine['id']}")
    assert order.status_code == 200 and 'data-action="start"' in order.text and "verify" not in order.text
    assert api.get(f"/orders/{theirs['id']}").status_code == 404
    refused = api.get("/orders/new?photo_id=x")
    assert refused.status_code == 403 and "只有工会安全员可以下达整改单" in refused.text


def test_the_dashboards_data_links_work_with_the_officers_session(site):
    """Item 3: JSON, CSV and the overdue list answered 401 to a signed-in officer."""
    api, headers, enterprise = site
    new_order(api, headers, enterprise)
    assert sign_in(api, KEYS["reviewer"], "/orders/") == "/orders/"
    dashboard = api.get("/orders/").text
    for link in ("/v1/orders/dashboard", "/v1/orders/dashboard.csv", "/v1/orders/overdue"):
        assert f'href="{link}"' in dashboard
        assert api.get(link).status_code == 200, link
    assert api.post("/v1/orders/escalate").status_code == 403  # a session's POST still needs its CSRF token
    assert api.post("/v1/orders/escalate", headers=csrf(api)).status_code == 200


def test_the_order_page_names_assignee_and_officer_and_whom_it_waits_for_since_when(site):
    """Item 4: neither assignee nor officer, and nothing when the next step was the enterprise's."""
    api, headers, enterprise = site
    order, _ = new_order(api, headers, enterprise, assignee="李工")
    sign_in(api, KEYS["reviewer"])
    page = api.get(f"/orders/{order['id']}").text
    assert "李工" in page and "王安全" in page
    waiting = re.search(r'<p id="waiting-for">(.*?)</p>', page).group(1)
    assert "等待企业开始整改" in waiting and "waiting for the enterprise to start since" in waiting
    assert f'datetime="{order["created_at"]}"' in waiting
    api.post(f"/v1/orders/{order['id']}/transitions", json={"action": "start"}, headers=headers["enterprise"])
    assert "等待企业提交整改照片" in api.get(f"/orders/{order['id']}").text


def test_the_original_photo_is_refused_as_proof_and_a_different_scene_is_flagged(site):
    """Item 5: a street photo and the byte-identical original were both accepted as proof."""
    api, headers, enterprise = site
    order, original = new_order(api, headers, enterprise)
    api.post(f"/v1/orders/{order['id']}/transitions", json={"action": "start"}, headers=headers["enterprise"])
    same = api.post(
        f"/v1/orders/{order['id']}/proof",
        files={"photo": ("p.jpg", original, "image/jpeg")},
        headers=headers["enterprise"],
    )
    assert same.status_code == 422 and same.json()["error"]["field"] == "photo"
    assert "This is the original photo of the hazard" in same.json()["error"]["message"]
    assert api.get(f"/v1/orders/{order['id']}", headers=headers["reviewer"]).json()["state"] == "in_progress"
    proof = api.post(
        f"/v1/orders/{order['id']}/proof",
        files={"photo": ("p.jpg", another_scene(), "image/jpeg")},
        headers=headers["enterprise"],
    )
    assert proof.status_code == 201, proof.text
    scene = api.get(f"/v1/orders/{order['id']}", headers=headers["reviewer"]).json()["comparison"]["after"]["scene"]
    assert scene["differs"] and scene["similarity"] < 0.7 and not scene["near_duplicate"]
    sign_in(api, KEYS["reviewer"])
    page = api.get(f"/orders/{order['id']}").text
    assert 'class="scene warn" role="alert"' in page and "不像同一现场" in page


def test_order_pages_speak_chinese_first_with_taxonomy_names_and_local_times(site):
    """Item 7: English labels, raw hazard ids and UTC times on the order page and the dashboard."""
    api, headers, enterprise = site
    order, _ = new_order(api, headers, enterprise)
    sign_in(api, KEYS["reviewer"])
    page = api.get(f"/orders/{order['id']}").text
    text = re.sub(r"<[^>]+>", " ", page)  # what the reader sees, not attributes
    hazard = order["comparison"]["hazard"]
    assert hazard not in text  # the taxonomy's names instead of the id
    assert "下达整改单" in text and "待整改" in text and "整改期限" in text
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text)  # no raw ISO times
    assert '<time class="local" datetime=' in page and "/orders/static/local-time.js" in page
    dashboard = re.sub(r"<[^>]+>", " ", api.get("/orders/").text)
    for words in ("整改单", "未整改", "逾期", "整改中位天数", "待企业开始整改"):
        assert words in dashboard
    assert "/orders/static/favicon.svg" in api.get("/orders/").text


def test_an_officer_opens_the_issue_form_from_a_confirmed_case_only(site):
    """Item 1: no page path from a confirmed case to an order."""
    api, headers, _ = site
    assessed = api.post(
        "/v1/photos/assess", files={"photo": ("fire.jpg", encode_image(RED), "image/jpeg")}, headers=headers["intake"]
    ).json()
    sign_in(api, KEYS["reviewer"])
    early = api.get(f"/orders/new?photo_id={assessed['photo_id']}")
    assert early.status_code == 409 and "请先在复核页确认或更正" in early.text
    api.post(f"/v1/review/{assessed['photo_id']}", json={"decision": "confirm"}, headers=headers["reviewer"])
    form = api.get(f"/orders/new?photo_id={assessed['photo_id']}")
    assert form.status_code == 200 and 'id="issue"' in form.text and 'name="enterprise_id"' in form.text
