"""Review queue at 10,000 open cases: server-side queries, the page in Chromium, keyboard decisions.

    .venv/bin/python benchmarks/review_queue.py [--cases 10000] [--decisions 20]

Seeds a fresh SQLite review store (WAL) under benchmarks/var/ with N open cases (bulk insert;
photos from the photo set when it is linked), then measures:
  - `ReviewStore.queue` for the default page (50, most urgent first) and with filters / deep offset;
  - recording one more assessment (photo store write + dHash group lookup + insert) at N cases;
  - the /review page in real Chromium: navigation start → queue rendered and first case shown;
  - one keyboard decision (`c`): keypress → next case selected with its photo loaded.
Targets: page < 300 ms; one decision < 3 s with the keyboard alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import PHOTO_DATA, RESULTS_DIR, Measurement, free_port, save_results  # noqa: E402
from serving.api.dependencies import Backends  # noqa: E402
from serving.orders.store import OrderStore  # noqa: E402
from serving.photo import build_assessment  # noqa: E402
from serving.review.queue import QueueFilter  # noqa: E402
from serving.review.schema import case_flags, cases  # noqa: E402
from serving.review.store import ReviewStore  # noqa: E402
from serving.routes import standalone_app  # noqa: E402
from serving.settings import ServingSettings  # noqa: E402

LABELS = ("missing_helmet", "missing_hi_vis", "fire_smoke", "wet_floor", "heavy_machinery", "poor_housekeeping")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def sample_photos(count: int) -> list[bytes]:
    if (PHOTO_DATA / "manifest.csv").is_file():
        return [path.read_bytes() for path in sorted((PHOTO_DATA / "images").glob("*/*.jpg"))[::60][:count]]
    rng = np.random.default_rng(0)
    photos = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).resize((640, 480)).save(buffer, "JPEG")
        photos.append(buffer.getvalue())
    return photos


def case_row(index: int, digest: str, rng: np.random.Generator) -> tuple[dict, list[str]]:
    probabilities = {label: round(float(p), 4) for label, p in zip(LABELS, rng.beta(0.6, 2.5, len(LABELS)))}
    flagged = [label for label in LABELS if probabilities[label] >= 0.5] or [LABELS[index % len(LABELS)]]
    probabilities.update({label: max(probabilities[label], 0.5) for label in flagged})
    triage = "urgent" if "fire_smoke" in flagged else "review"
    return {
        "photo_id": uuid.uuid4().hex,
        "photo_sha256": digest,
        "created_at": dt.datetime(2026, 10, 27) + dt.timedelta(minutes=int(rng.integers(0, 30 * 24 * 60))),
        "status": "open",
        "triage": triage,
        "severity_rank": 2 if triage == "urgent" else 1,
        "top_probability": max(probabilities.values()),
        "model_name": "hazard_photo",
        "model_version": "bench",
        "labels": list(LABELS),
        "probabilities": probabilities,
        "thresholds": dict.fromkeys(LABELS, 0.5),
        "flagged": flagged,
        "cam": np.zeros((6, 7, 7), "<f2").tobytes(),
        "cam_shape": [6, 7, 7],
        "site_id": f"site-{index % 50}",
        "width": 448,
        "height": 336,
        "dhash": f"{int(rng.integers(0, 2**63)):016x}",
        "group_id": None,
        "decision_count": 0,
    }, flagged


def seed(store: ReviewStore, count: int, photos: list[bytes]) -> None:
    digests = [store.photos.put(data) for data in photos]
    rng = np.random.default_rng(20261126)
    rows, flags = [], []
    for index in range(count):
        row, flagged = case_row(index, digests[index % len(digests)], rng)
        row["group_id"] = row["photo_id"]
        rows.append(row)
        flags += [{"photo_id": row["photo_id"], "hazard": hazard} for hazard in flagged]
    with store.engine.begin() as connection:
        connection.execute(cases.insert(), rows)
        connection.execute(case_flags.insert(), flags)
    if store.engine.dialect.name == "postgresql":  # what autovacuum does after a bulk load
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE review_cases")
            connection.exec_driver_sql("VACUUM ANALYZE review_case_flags")


def time_ms(work, *, repeats: int) -> list[float]:
    work()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        runs.append((time.perf_counter() - start) * 1000)
    return runs


def query_measurements(store: ReviewStore, count: int) -> list[Measurement]:
    queries = {
        "default page (50, open, most urgent first)": QueueFilter(),
        "hazard=wet_floor": QueueFilter(hazard="wet_floor"),
        "site=site-7": QueueFilter(site="site-7"),
        "date range (7 days)": QueueFilter(date_from=dt.datetime(2026, 11, 1), date_to=dt.datetime(2026, 11, 8)),
        "offset 5000": QueueFilter(offset=5000),
    }
    return [
        Measurement(
            name=f"queue query at {count} open: {name}",
            unit="ms",
            runs=time_ms(lambda q=query: store.queue(q), repeats=15),
        )
        for name, query in queries.items()
    ]


def record_measurement(store: ReviewStore, photos: list[bytes], count: int) -> Measurement:
    def record() -> None:
        image = Image.open(io.BytesIO(photos[0])).convert("RGB")
        hazards = {label: 0.6 if label == "wet_floor" else 0.05 for label in LABELS}
        assessment = build_assessment(
            hazards,
            dict.fromkeys(LABELS, 0.5),
            model_name="hazard_photo",
            model_version="bench",
            cam=np.zeros((6, 7, 7), np.float32),
        )
        store.record_assessment(photo_id=uuid.uuid4().hex, data=photos[0], image=image, assessment=assessment)

    return Measurement(name=f"record one assessed photo at {count} cases", unit="ms", runs=time_ms(record, repeats=10))


def serve(store: ReviewStore):
    import uvicorn

    port = free_port()
    # Auth off: this measures the page and the queue; sign-in is measured nowhere and costs one request.
    parts = Backends(review_store=store, order_store=OrderStore.beside(store))
    app = standalone_app(parts, settings=ServingSettings(auth=False, data_dir=Path(tempfile.mkdtemp())))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def browser_measurements(base_url: str, count: int, decisions: int) -> list[Measurement]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        loads = []
        for _ in range(6):
            page.goto(f"{base_url}/review/")
            page.wait_for_selector("body[data-ready=true]")
            loads.append(float(page.get_attribute("body", "data-ready-ms")))
        page.locator("h1").click()
        per_decision = [decide_once(page) for _ in range(decisions)]
        browser.close()
    return [
        Measurement(
            name=f"/review page at {count} open: navigation → queue + first case shown",
            unit="ms",
            runs=loads[1:],
            extra={"first_load_ms": loads[0]},
        ),
        Measurement(
            name="one keyboard decision (c): keypress → next case shown with photo", unit="ms", runs=per_decision
        ),
    ]


def decide_once(page) -> float:
    following = page.locator(".case").nth(1).get_attribute("data-photo-id")
    start = time.perf_counter()
    page.keyboard.press("c")
    page.wait_for_function(
        "id => document.querySelector('.case.selected')?.dataset.photoId === id "
        "&& document.querySelector('#detail .photo')?.complete",
        arg=following,
    )
    return (time.perf_counter() - start) * 1000


def query_plan(store: ReviewStore) -> list[str]:
    explain = "EXPLAIN QUERY PLAN" if store.engine.dialect.name == "sqlite" else "EXPLAIN"
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            f"{explain} SELECT photo_id FROM review_cases WHERE status = 'open' "
            "ORDER BY severity_rank DESC, top_probability DESC, created_at, photo_id LIMIT 50"
        ).all()
    return [str(row[-1]) for row in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000, help="open cases to seed (default: %(default)s)")
    parser.add_argument("--decisions", type=int, default=20, help="keyboard decisions to time (default: %(default)s)")
    parser.add_argument(
        "--database", default=None, help="an empty review database URL, e.g. PostgreSQL (default: a fresh SQLite file)"
    )
    args = parser.parse_args()
    work = RESULTS_DIR.parent / "var" / "review_queue"
    shutil.rmtree(work, ignore_errors=True)
    store = ReviewStore(database_url=args.database or f"sqlite:///{work / 'review.db'}", photo_dir=work / "photos")
    photos = sample_photos(40)
    seed(store, args.cases, photos)
    measurements = query_measurements(store, args.cases)
    plan = query_plan(store)
    server, base_url = serve(store)
    try:
        measurements += browser_measurements(base_url, args.cases, args.decisions)
    finally:
        server.should_exit = True
    measurements.append(record_measurement(store, photos, args.cases + args.decisions))
    store_dialect = store.engine.dialect.name
    store.close()
    name = "review_queue" if store_dialect == "sqlite" else f"review_queue_{store_dialect}"
    save_results(
        name,
        measurements,
        notes={
            "query_plan": plan,
            "cases": args.cases,
            "database": store_dialect,
            "server": "uvicorn, review apps only (no BentoML, no auth)",
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
