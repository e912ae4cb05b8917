"""Issue 23's "done when": the whole loop in pages only, in Debian Chromium, through the service exactly
as `make run` serves it (`bentoml serve serving.service:Ankang`, a fresh ANKANG_DATA_DIR, keys made with
`ankang keys create`, the released photo model when the photo set is here).

An officer signs in, confirms an urgent case, issues an order from it and signs out; the enterprise
signs in, sees the order and its deadline, starts it and uploads a proof photo; the officer verifies and
closes it on the order page and sees it on the dashboard; the reporter's receipt reads each stage.
Screenshots of every page go to var/screenshots/loop/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageFilter

from tests.conftest import PHOTO_SET, PROJECT_ROOT
from tests.server import CHROMIUM, chromium, clean_env, start_server, stop_server, wait_in_page, wait_until_ready
from tests.toy_models import write_toy_photo_model

SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots" / "loop"
ENTERPRISE = "E-TEST-0001"  # a clearly made-up enterprise id
FIRE_PHOTO = "images/cair-fire-normal/65b53e156d8f1d34.jpg"  # a test-split photo of burning houses
PORTS = range(3400, 3500)  # this work's port range on the shared machine

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]


def port_in_range() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def create_key(env: dict[str, str], *args: str) -> str:
    """`ankang keys create ...` as an administrator runs it; the key is the last line it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "ankang_cli", "keys", "create", *args],
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def photos(model_dir: Path | None) -> tuple[bytes, bytes]:
    """The reported photo and the enterprise's proof: the same scene with the fire gone (blurred, grey).
    A real fire photo for the released model; a red square for the toy model without the photo set."""
    if model_dir is None:
        image = Image.open(PHOTO_SET / FIRE_PHOTO).convert("RGB")
    else:
        image = Image.new("RGB", (320, 240), (230, 20, 20))
    reported = io.BytesIO()
    image.save(reported, format="JPEG", quality=90)
    width, height = image.size  # taken again a step aside: cropped, and the flames gone (grey, blurred)
    moved = image.crop((int(width * 0.12), int(height * 0.08), width, height)).resize((width, height))
    fixed = moved.convert("L").filter(ImageFilter.GaussianBlur(2)).convert("RGB")
    proof = io.BytesIO()
    fixed.save(proof, format="JPEG", quality=90)
    return reported.getvalue(), proof.getvalue()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict]:
    data_dir = tmp_path / "var"
    env = clean_env(ANKANG_DATA_DIR=str(data_dir))
    model_dir = None
    if not (PHOTO_SET / FIRE_PHOTO).is_file():  # no photo set: the toy model sees red as fire
        model_dir = write_toy_photo_model(tmp_path / "models" / "hazard_photo")
        env["ANKANG_PHOTO_MODEL_DIR"] = str(model_dir)
    keys = {
        "intake": create_key(env, "--role", "intake", "--label", "wechat bot"),
        "officer": create_key(env, "--role", "reviewer", "--holder", "王安全"),
        "enterprise": create_key(env, "--role", "enterprise", "--enterprise-id", ENTERPRISE),
    }
    port = port_in_range()
    with open(tmp_path / "server.log", "w") as log:
        process = start_server(env, port=port, log=log)
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(base_url, process, timeout_seconds=180)
            yield {"url": base_url, "keys": keys, "photos": photos(model_dir)}
        finally:
            stop_server(process)


def stage(base_url: str, receipt: str) -> str:
    answer = httpx.get(f"{base_url}/v1/reports/{receipt}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["stage"]


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, base_url: str, path: str, key: str) -> None:
    """Open a page signed out: the one sign-in page, then back to where the role belongs."""
    page.goto(f"{base_url}{path}")
    assert page.url.startswith(f"{base_url}/sign-in?next=")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def sign_out(page, base_url: str) -> None:
    page.click("#sign-out")
    page.wait_for_url(f"{base_url}/sign-in")


def test_the_whole_loop_in_pages_only(served):
    base_url, keys = served["url"], served["keys"]
    reported, proof = served["photos"]
    assessed = httpx.post(  # the reporter's photo arrives through an intake system, as it does in the field
        f"{base_url}/v1/photos/assess",
        headers={"Authorization": f"Bearer {keys['intake']}"},
        files={"photo": ("fire.jpg", reported, "image/jpeg")},
        data={"site_id": "工地-3号楼", "channel": "wechat"},
        timeout=60,
    ).json()
    assert assessed["triage"] == "urgent", assessed
    receipt, stages = assessed["receipt"], [stage(base_url, assessed["receipt"])]
    broken: list[str] = []
    with chromium() as browser:
        context = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1366, "height": 900}
        )
        page = context.new_page()
        page.on("response", lambda r: broken.append(f"{r.status} {r.url}") if r.status >= 400 else None)

        # The officer: sign in, confirm the urgent case, issue an order from it, sign out.
        sign_in(page, base_url, "/review/", keys["officer"])
        page.wait_for_selector("body[data-ready=true]")
        case = page.locator(f'.case.urgent[data-photo-id="{assessed["photo_id"]}"]')
        assert "紧急 URGENT · 期限 due" in case.inner_text()
        wait_in_page(
            page, "() => (i => i && i.complete && i.naturalWidth > 0)(document.querySelector('#detail .photo'))"
        )
        shoot(page, "1-officer-review-queue")
        page.locator("h1").click()
        page.keyboard.press("c")
        page.wait_for_selector("#flash a.issue-link")
        stages.append(stage(base_url, receipt))
        shoot(page, "2-officer-confirmed")
        page.click("#flash a.issue-link")
        page.wait_for_selector("#issue")
        page.fill("input[name=enterprise_id]", ENTERPRISE)
        page.fill("input[name=assignee]", "李工（安全主任）")
        page.fill("textarea[name=measures]", "清理现场易燃物，配备灭火器，整改后在同一位置拍照上传。")
        shoot(page, "3-officer-issue-form")
        page.click("#issue button[type=submit]")
        page.wait_for_selector("#state[data-state=open]")
        order_url = page.url
        assert "等待企业开始整改" in page.inner_text("#waiting-for")
        assert "李工（安全主任）" in page.inner_text("#fact-assignee")
        assert "王安全" in page.inner_text("#fact-responsible-officer")
        shoot(page, "4-officer-order-issued")
        sign_out(page, base_url)

        # The enterprise: sign in, see the order and its deadline, start it, upload the proof photo.
        sign_in(page, base_url, "/orders/", keys["enterprise"])
        assert page.url == f"{base_url}/orders/"
        row = page.locator("#my-orders tr", has_text="明火烟雾")
        assert row.count() == 1 and "剩余" in row.inner_text()  # the deadline, and the hours left
        shoot(page, "5-enterprise-orders")
        row.locator("a").click()
        page.wait_for_selector("#state[data-state=open]")
        assert page.url == order_url
        page.click("button[data-action=start]")
        page.wait_for_selector("#state[data-state=in_progress]")
        stages.append(stage(base_url, receipt))
        page.set_input_files(
            "#proof input[name=photo]", files=[{"name": "after.jpg", "mimeType": "image/jpeg", "buffer": proof}]
        )
        page.fill("#proof textarea[name=comment]", "已清理易燃物并配备两具灭火器。")
        shoot(page, "6-enterprise-proof-form")
        page.click("#proof button[type=submit]")
        page.wait_for_selector("#state[data-state=submitted]", timeout=60_000)
        assert "等待安全员复查" in page.inner_text("#waiting-for")
        shoot(page, "7-enterprise-submitted")
        sign_out(page, base_url)

        # The officer again: verify and close on the order page, then the dashboard.
        sign_in(page, base_url, "/orders/", keys["officer"])
        assert page.url == f"{base_url}/orders/"
        page.click(f'#waiting a[href="{order_url.removeprefix(base_url)}"]')
        page.wait_for_selector("#state[data-state=submitted]")
        wait_in_page(
            page, "() => [...document.querySelectorAll('.photo img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        assert page.locator("#scene-similarity").count() == 1
        assert page.locator(".scene.warn").count() == 0  # the same scene, taken again: no warning
        shoot(page, "8-officer-verify")
        page.fill("textarea[name=comment]", "复查合格，现场已无明火隐患。")
        page.click("button[data-action=verify]")
        page.wait_for_selector("#state[data-state=verified]")
        stages.append(stage(base_url, receipt))
        page.click("button[data-action=close]")
        page.wait_for_selector("#state[data-state=closed]")
        stages.append(stage(base_url, receipt))
        shoot(page, "9-officer-closed")
        page.click("nav.site a[href='/orders/']")
        page.wait_for_selector("#tiles")
        assert page.locator('#by-state .bar[data-label="已闭环 closed"]').get_attribute("data-value") == "1"
        assert page.locator(f'#closed-orders a[href="{order_url.removeprefix(base_url)}"]').count() == 1
        # nothing unrectified: no enterprise listed with 0, and empty lists say so
        assert page.locator("#by-enterprise-chart .bar").count() == 0 and "暂无" in page.inner_text(
            "#by-enterprise-chart"
        )
        assert page.locator("#waiting td.empty").inner_text() == "暂无 None"
        assert page.locator("#by-enterprise tr", has_text=ENTERPRISE).count() == 1
        shoot(page, "10-officer-dashboard")
    assert stages == ["received", "confirmed", "rectifying", "rectified", "closed"]
    assert broken == []  # no page, photo, script or icon answered an error on the way
