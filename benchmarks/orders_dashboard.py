"""The order loop at 10,000 rectification orders: the dashboard (JSON, CSV, page) and the order list over HTTP.

    .venv/bin/python benchmarks/orders_dashboard.py [--orders 10000] [--database URL]

Seeds a fresh review database (SQLite WAL under benchmarks/var/, or the given empty PostgreSQL)
with N orders over 12 weeks (bulk insert: 50 sites, 400 enterprises, 12 districts, states mixed,
a third overdue) and one transition each, serves the order apps with uvicorn (no BentoML, no
auth), and times each request with httpx from the same machine. Target: < 300 ms each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS_DIR, Measurement, free_port, save_results  # noqa: E402
from serving.api.dependencies import Backends  # noqa: E402
from serving.orders.schema import orders, transitions  # noqa: E402
from serving.orders.states import STATES  # noqa: E402
from serving.orders.store import OrderStore  # noqa: E402
from serving.review.store import ReviewStore  # noqa: E402
from serving.routes import standalone_app  # noqa: E402
from serving.settings import ServingSettings  # noqa: E402

HAZARDS = ("missing_helmet", "missing_hi_vis", "fire_smoke", "wet_floor", "heavy_machinery", "poor_housekeeping")
NOW = dt.datetime(2026, 12, 2, 6, 0)


def order_row(rng: np.random.Generator) -> dict:
    created = NOW - dt.timedelta(minutes=int(rng.integers(0, 12 * 7 * 24 * 60)))
    hazard = HAZARDS[int(rng.integers(0, len(HAZARDS)))]
    state = STATES[int(rng.choice(len(STATES), p=[0.25, 0.2, 0.1, 0.15, 0.3]))]
    rectified = state in ("verified", "closed")
    done = created + dt.timedelta(hours=float(rng.gamma(2.0, 40.0)))
    return {
        "id": uuid.uuid4().hex,
        "kind": "rectification",
        "photo_id": None,
        "enterprise_id": f"E-{int(rng.integers(0, 400)):03d}",
        "site_id": f"site-{int(rng.integers(0, 50))}",
        "district": f"district-{int(rng.integers(0, 12))}",
        "officer": "bench",
        "hazard": hazard,
        "hazards": [hazard],
        "severity": "疑似重大" if hazard == "fire_smoke" else "一般",
        "major": hazard == "fire_smoke",
        "state": state,
        "escalation_level": 0,
        "created_at": created,
        "due_at": created + dt.timedelta(days=1 if hazard == "fire_smoke" else 7),
        "updated_at": created,
        "rectified_at": done if rectified else None,
        "closed_at": done if state == "closed" else None,
        "original_probability": 0.8,
        "transition_count": 1,
    }


def seed(store: OrderStore, count: int) -> None:
    rng = np.random.default_rng(20261202)
    rows = [order_row(rng) for _ in range(count)]
    with store.engine.begin() as connection:
        connection.execute(orders.insert(), rows)
        connection.execute(
            transitions.insert(),
            [
                {
                    "order_id": row["id"],
                    "action": "create",
                    "from_state": None,
                    "to_state": "open",
                    "actor": "bench",
                    "created_at": row["created_at"],
                }
                for row in rows
            ],
        )
    if store.engine.dialect.name == "postgresql":  # what autovacuum does after a bulk load
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE rectification_orders")


def serve(parts: Backends):
    import uvicorn

    port = free_port()
    app = standalone_app(parts, settings=ServingSettings(auth=False, data_dir=Path(tempfile.mkdtemp())))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def timed_get(client: httpx.Client, path: str, *, repeats: int, before=None) -> tuple[list[float], int]:
    assert client.get(path).status_code == 200, path  # warm-up and check
    runs = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        response = client.get(path)
        runs.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return runs, len(response.content)


def http_measurements(base_url: str, count: int, parts: Backends, *, repeats: int = 15) -> list[Measurement]:
    dashboards = {
        "dashboard JSON": "/v1/orders/dashboard",
        "dashboard CSV": "/v1/orders/dashboard.csv",
        "dashboard page (HTML + SVG)": "/orders/",
    }
    lists = {
        "order list, default page (50 unrectified, soonest due)": "/v1/orders/",
        "order list, all states, offset 5000": "/v1/orders/?state=all&offset=5000",
        "overdue list": "/v1/orders/overdue",
        "order list, one enterprise": "/v1/orders/?enterprise_id=E-017&state=all",
    }
    cases = [
        (f"{name}, cold (figures recomputed: as after any change)", path, parts.order_figures.clear)
        for name, path in dashboards.items()
    ]
    cases += [(f"{name}, unchanged since the last request", path, None) for name, path in dashboards.items()]
    cases += [(name, path, None) for name, path in lists.items()]
    measurements = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for name, path, before in cases:
            runs, size = timed_get(client, path, repeats=repeats, before=before)
            measurements.append(
                Measurement(name=f"{name} at {count} orders ({path})", unit="ms", runs=runs, extra={"bytes": size})
            )
    return measurements


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000, help="orders to seed (default: %(default)s)")
    parser.add_argument("--database", default=None, help="an empty database URL, e.g. PostgreSQL (default: SQLite)")
    args = parser.parse_args()
    work = RESULTS_DIR.parent / "var" / "orders_dashboard"
    shutil.rmtree(work, ignore_errors=True)
    review = ReviewStore(database_url=args.database or f"sqlite:///{work / 'review.db'}", photo_dir=work / "photos")
    store = OrderStore.beside(review)
    seed(store, args.orders)
    parts = Backends(review_store=review, order_store=store)
    server, base_url = serve(parts)
    try:
        measurements = http_measurements(base_url, args.orders, parts)
    finally:
        server.should_exit = True
    dialect = review.engine.dialect.name
    review.close()
    name = "orders_dashboard" if dialect == "sqlite" else f"orders_dashboard_{dialect}"
    save_results(
        name,
        measurements,
        notes={"orders": args.orders, "database": dialect, "server": "uvicorn, route apps only (no BentoML, no auth)"},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
