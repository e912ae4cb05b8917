"""Crash safety of the order loop: SIGKILL the real server while officers move orders; every
acknowledged transition survives, each with its outbox row (the webhook is never lost).

Starts `bentoml serve serving.service:Ankang` (auth on, toy photo model), opens one supervision case
per writer (no photo needed to submit one), moves them submit / reject from 8 threads with unique
comments, kills the process group mid-way, restarts on the same data directory and compares.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.server import served, stop_server
from tests.toy_models import write_toy_photo_model

pytestmark = pytest.mark.slow
REVIEWER = "reviewer-orders-crash-key-4e8a"
WRITERS, KILL_AFTER_ACKS = 8, 80
HEADERS = {"Authorization": f"Bearer {REVIEWER}"}


def open_cases(base_url: str) -> list[str]:
    ids = []
    for _ in range(WRITERS):
        response = httpx.post(
            f"{base_url}/v1/orders/supervision",
            headers=HEADERS,
            timeout=30,
            json={"enterprise_id": f"crash-{uuid.uuid4().hex[:8]}", "risk_tier": 4},
        )
        assert response.status_code == 201, response.text
        order_id = response.json()["id"]
        started = httpx.post(
            f"{base_url}/v1/orders/{order_id}/transitions", headers=HEADERS, timeout=30, json={"action": "start"}
        )
        assert started.status_code == 201, started.text
        ids.append(order_id)
    return ids


class Movers:
    def __init__(self, base_url: str, orders: list[str]):
        self.base_url, self.orders = base_url, orders
        self.acknowledged: set[str] = set()
        self.lock, self.stop = threading.Lock(), threading.Event()

    def move(self, writer: int) -> None:
        order_id = self.orders[writer]
        with httpx.Client(timeout=10) as client:
            for sequence in range(100_000):
                if self.stop.is_set():
                    return
                comment = f"w{writer}-n{sequence}"
                action = "submit" if sequence % 2 == 0 else "reject"
                try:
                    response = client.post(
                        f"{self.base_url}/v1/orders/{order_id}/transitions",
                        headers=HEADERS,
                        json={"action": action, "comment": comment},
                    )
                except httpx.HTTPError:
                    return  # the server is gone: not acknowledged
                if response.status_code == 201:
                    with self.lock:
                        self.acknowledged.add(comment)
                else:
                    return  # a 409 would mean a lost transition: the check below finds it

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)


def test_acknowledged_transitions_and_their_outbox_rows_survive_sigkill(tmp_path):
    env = {
        **os.environ,
        "ANKANG_DATA_DIR": str(tmp_path / "var"),
        "ANKANG_AUTH": "on",
        "ANKANG_API_KEYS": f"reviewer:{REVIEWER}:crash-officer",
        "ANKANG_PHOTO_MODEL_DIR": str(write_toy_photo_model(tmp_path / "models" / "hazard_photo")),
    }
    with served(env) as (base_url, process):
        orders = open_cases(base_url)
        movers = Movers(base_url, orders)
        with ThreadPoolExecutor(WRITERS) as pool:
            for writer in range(WRITERS):
                pool.submit(movers.move, writer)
            deadline = time.monotonic() + 60
            while movers.count() < KILL_AFTER_ACKS and time.monotonic() < deadline:
                time.sleep(0.01)
            stop_server(process, sig=signal.SIGKILL)
            movers.stop.set()
    assert len(movers.acknowledged) >= KILL_AFTER_ACKS
    with served(env) as (base_url, _):
        found, states = set(), []
        for order_id in orders:
            order = httpx.get(f"{base_url}/v1/orders/{order_id}", headers=HEADERS, timeout=30).json()
            found |= {entry["comment"] for entry in order["history"]}
            history = order["history"]
            states.append((order["state"], history[-1]["to"], order["transition_count"], len(history)))
    print(f"acknowledged {len(movers.acknowledged)} transitions; found after restart {len(found)}")
    assert movers.acknowledged <= found, f"lost {len(movers.acknowledged - found)} acknowledged transitions"
    assert all(state == last and count == length for state, last, count, length in states)
    with sqlite3.connect(tmp_path / "var" / "review" / "review.db") as database:
        assert database.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        transitions = database.execute("SELECT count(*) FROM order_transitions").fetchone()[0]
        events = database.execute("SELECT count(*) FROM order_outbox").fetchone()[0]
    assert transitions == events  # one outbox row per transition, written in the same transaction
