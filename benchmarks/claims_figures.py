"""Workers' claims at 100,000 claims: the officers' queue and the figures (JSON, CSV, page) over HTTP.

    .venv/bin/python benchmarks/claims_figures.py [--claims 100000] [--database URL]

Seeds a fresh review database (SQLite WAL under benchmarks/var/, or the given empty PostgreSQL)
with N claims over 12 weeks (bulk insert: 3,000 enterprises, the seven types, six channels, 12
districts), grouped into cases as the store groups them (same enterprise and type within 30 days),
cases in every state with handlers, closings and one rating for every third closed claim; serves
the claims apps with uvicorn (no BentoML, no auth) and times each request with httpx from the same
machine. Target: < 300 ms each. The figures are recomputed in the background after a change (a
request waits at most 150 ms for that, then gets the previous figures): the first request after
start waits for the first computation, and the recomputation's own time is measured in-process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS_DIR, Measurement, save_results  # noqa: E402
from benchmarks.orders_dashboard import serve, timed_get  # noqa: E402  (the same standalone server and timing)
from serving.api.dependencies import Backends  # noqa: E402
from serving.claims import figures as claim_figures  # noqa: E402
from serving.claims.feedback import Receipts  # noqa: E402
from serving.claims.policy import CHANNELS, TYPES, load_policy  # noqa: E402
from serving.claims.requests import NewClaimRequest  # noqa: E402
from serving.claims.schema import claim_cases, claims, report_feedback  # noqa: E402
from serving.claims.store import ClaimStore  # noqa: E402
from serving.orders.store import OrderStore  # noqa: E402
from serving.review.store import ReviewStore  # noqa: E402

NOW = dt.datetime(2026, 12, 6, 6, 0)
HANDLERS = tuple(load_policy().handlers)
WINDOW = dt.timedelta(days=30)


def claim_rows(rng: np.random.Generator, count: int) -> list[dict]:
    minutes = np.sort(rng.integers(0, 12 * 7 * 24 * 60, size=count))[::-1]
    return [
        {
            "id": uuid.uuid4().hex,
            "channel": CHANNELS[int(rng.integers(0, len(CHANNELS)))],
            "type": TYPES[int(rng.choice(len(TYPES), p=[0.45, 0.2, 0.1, 0.1, 0.07, 0.05, 0.03]))],
            "enterprise_id": f"E-{int(rng.integers(0, 3000)):04d}",
            "district": f"district-{int(rng.integers(0, 12))}",
            "workers": int(rng.choice([1, 1, 1, 2, 3, 12])),
            "amount_cny": float(rng.integers(1, 60)) * 1000,
            "description": "bench",
            "claimant": uuid.uuid4().hex[:16],
            "receipt_sha256": uuid.uuid4().hex + uuid.uuid4().hex,
            "received_by": "bench",
            "created_at": NOW - dt.timedelta(minutes=int(m)),
        }
        for m in minutes
    ]


def group(rows: list[dict]) -> dict[str, dict]:
    """Cases as the store makes them: a claim joins its (enterprise, type)'s case whose latest claim is
    at most 30 days older, else opens one (rows oldest first)."""
    open_cases: dict[tuple[str, str], dict] = {}
    cases: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["created_at"]):
        key = (row["enterprise_id"], row["type"])
        case = open_cases.get(key)
        if case is None or row["created_at"] - case["last_claim_at"] > WINDOW:
            case = {"id": uuid.uuid4().hex, "key": key, "opened_at": row["created_at"], "claims": []}
            open_cases[key], cases[case["id"]] = case, case
        case["last_claim_at"] = row["created_at"]
        case["claims"].append(row)
        row["case_id"] = case["id"]
    return cases


def case_row(case: dict, rng: np.random.Generator, policy) -> dict:
    enterprise_id, claim_type = case["key"]
    workers = sum(c["workers"] for c in case["claims"])
    state = ("accepted", "dispatched", "handled", "closed")[int(rng.choice(4, p=[0.1, 0.2, 0.1, 0.6]))]
    closed_at = case["last_claim_at"] + dt.timedelta(hours=float(rng.gamma(2.0, 60.0)))
    if state == "closed" and closed_at > NOW:
        state = "handled"
    return {
        "id": case["id"],
        "enterprise_id": enterprise_id,
        "type": claim_type,
        "district": case["claims"][0]["district"],
        "state": state,
        "handler": None if state == "accepted" else HANDLERS[int(rng.integers(0, len(HANDLERS)))],
        "claimants": len(case["claims"]),
        "workers": workers,
        "amount_cny": sum(c["amount_cny"] for c in case["claims"]),
        "urgency": policy.urgency(claim_type, workers),
        "opened_at": case["opened_at"],
        "last_claim_at": case["last_claim_at"],
        "due_at": policy.due_time(claim_type, accepted_at=case["opened_at"]),
        "updated_at": case["last_claim_at"],
        "closed_at": closed_at if state == "closed" else None,
        "outcome": "recovered" if state == "closed" else None,
        "transition_count": 1,
    }


def seed(store: ClaimStore, count: int) -> int:
    rng = np.random.default_rng(20261206)
    rows = claim_rows(rng, count)
    cases = [case_row(case, rng, store.policy) for case in group(rows).values()]
    closed = {case["id"]: case["closed_at"] for case in cases if case["state"] == "closed"}
    ratings = [
        {
            "claim_id": row["id"],
            "case_id": row["case_id"],
            "round": 0,
            "satisfied": int(rng.choice([5, 5, 5, 4, 3, 2, 1])),
            "resolved": True,
            "created_at": closed[row["case_id"]],
        }
        for index, row in enumerate(rows)
        if row["case_id"] in closed and index % 3 == 0
    ]
    with store.engine.begin() as connection:
        for start in range(0, len(cases), 5000):
            connection.execute(claim_cases.insert(), cases[start : start + 5000])
        for start in range(0, len(rows), 5000):
            connection.execute(claims.insert(), rows[start : start + 5000])
        for start in range(0, len(ratings), 5000):
            connection.execute(report_feedback.insert(), ratings[start : start + 5000])
    if store.engine.dialect.name == "postgresql":  # what autovacuum does after a bulk load
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE claim_cases, claims, report_feedback")
    return len(cases)


def file_one(store: ClaimStore):
    """A change just before the request: one more claim, filed through the store."""
    claim = NewClaimRequest(
        channel="hotline_12351",
        enterprise_id="E-0001",
        type="wage_arrears",
        workers=1,
        amount_cny=1000.0,
        description="bench",
        district="district-1",
    )

    def before() -> None:
        store.file_claim(claim, received_by="bench")

    return before


def recompute_ms(store: ClaimStore, repeats: int) -> Measurement:
    """The background recomputation itself, in-process (what the worker spends after each change)."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        claim_figures.summary(store.engine)
        runs.append((time.perf_counter() - start) * 1000)
    return Measurement(name="figures recomputation (summary(), in-process, background)", unit="ms", runs=runs)


def http_measurements(base_url: str, count: int, store: ClaimStore, *, repeats: int = 15) -> list[Measurement]:
    figures = {
        "figures JSON": "/v1/claims/figures",
        "figures CSV": "/v1/claims/figures.csv",
        "figures page (HTML + SVG)": "/claims/figures",
    }
    queues = {
        "queue, default page (50 open cases, most urgent first, with their claims)": "/v1/claims/",
        "queue page (HTML)": "/claims/",
        "queue, all states, offset 5000": "/v1/claims/?state=all&offset=5000",
        "queue, one channel and district": "/v1/claims/?channel=city_platform&district=district-3",
        "queue, one enterprise": "/v1/claims/?enterprise_id=E-0017&state=all",
    }
    # the queue first: the figures' background recomputations after "a claim filed" would slow it
    cases = [(name, path, None) for name, path in queues.items()]
    cases += [(f"{name}, unchanged since the last request", path, None) for name, path in figures.items()]
    cases += [
        (f"{name}, a claim filed just before (answered within the wait)", path, file_one(store))
        for name, path in figures.items()
    ]
    measurements = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        start = time.perf_counter()
        client.get("/v1/claims/figures").raise_for_status()
        first = (time.perf_counter() - start) * 1000
        measurements.append(
            Measurement(
                name=f"figures JSON, first request after start (computed, waited for) at {count} claims",
                unit="ms",
                runs=[first],
            )
        )
        for name, path, before in cases:
            runs, size = timed_get(client, path, repeats=repeats, before=before)
            measurements.append(
                Measurement(name=f"{name} at {count} claims ({path})", unit="ms", runs=runs, extra={"bytes": size})
            )
    return measurements


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=100_000, help="claims to seed (default: %(default)s)")
    parser.add_argument("--database", default=None, help="an empty database URL, e.g. PostgreSQL (default: SQLite)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    work = RESULTS_DIR.parent / "var" / "claims_figures"
    shutil.rmtree(work, ignore_errors=True)
    review = ReviewStore(database_url=args.database or f"sqlite:///{work / 'review.db'}", photo_dir=work / "photos")
    orders = OrderStore.beside(review)
    store = ClaimStore.beside(orders)
    parts = Backends(
        review_store=review, order_store=orders, claim_store=store, claim_receipts=Receipts(engine=review.engine)
    )
    started = time.perf_counter()
    case_count = seed(store, args.claims)
    print(f"seeded {args.claims} claims in {case_count} cases in {time.perf_counter() - started:.0f} s", flush=True)
    server, base_url = serve(parts)
    try:
        measurements = http_measurements(base_url, args.claims, store, repeats=args.repeats)
        measurements.append(recompute_ms(store, 3))
    finally:
        server.should_exit = True
    dialect = review.engine.dialect.name
    review.close()
    for measurement in measurements:
        print(f"{measurement.median:8.1f} ms  {measurement.name}", flush=True)
    name = "claims_figures" if dialect == "sqlite" else f"claims_figures_{dialect}"
    save_results(
        name,
        measurements,
        notes={
            "claims": args.claims,
            "cases": case_count,
            "database": dialect,
            "server": "uvicorn, claims apps only (no BentoML, no auth)",
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
