"""Crash safety: SIGKILL the real server while reviewers write decisions; every acknowledged one survives.

Starts `bentoml serve serving.service:Ankang` (as `make run` does, auth on, toy photo model),
assesses photos to create review cases, writes decisions from 8 threads while 2 more post new
photos, kills the whole process group mid-way, restarts on the same data directory, and checks
that every decision answered with a 2xx is there, every acknowledged assessment has its case and a
decodable photo, and SQLite's `PRAGMA integrity_check` says ok.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from tests.server import free_port, ready, served, start_server, stop_server
from tests.serving.conftest import encode_image
from tests.toy_models import write_toy_photo_model

pytestmark = pytest.mark.slow
INTAKE, REVIEWER = "intake-crash-key-1c9e7a0d", "reviewer-crash-key-8b2f4d"  # >= 24 characters (issue 21)
WRITERS, ASSESSORS, CASES, KILL_AFTER_ACKS = 8, 2, 16, 60


def create_cases(base_url: str) -> list[str]:
    headers = {"Authorization": f"Bearer {INTAKE}"}
    ids = []
    for index in range(CASES):
        photo = encode_image((255, (index * 37) % 256, 0), size=(64 + index, 48))
        response = httpx.post(
            f"{base_url}/v1/photos/assess",
            files={"photo": ("p.jpg", photo, "image/jpeg")},
            data={"site_id": "crash"},
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        ids.append(response.json()["photo_id"])
    return ids


class DecisionWriters:
    """Threads that post decisions with unique comments and remember which ones got a 2xx."""

    def __init__(self, base_url: str, cases: list[str]):
        self.base_url, self.cases = base_url, cases
        self.acknowledged: set[str] = set()
        self.assessed: set[str] = set()
        self.lock, self.stop = threading.Lock(), threading.Event()

    def write(self, writer: int) -> None:
        headers = {"Authorization": f"Bearer {REVIEWER}"}
        with httpx.Client(timeout=10) as client:
            for sequence in range(100_000):
                if self.stop.is_set():
                    return
                comment = f"w{writer}-n{sequence}"
                case = self.cases[(writer * 7 + sequence) % len(self.cases)]
                try:
                    response = client.post(
                        f"{self.base_url}/v1/review/{case}",
                        headers=headers,
                        json={"decision": "confirm", "comment": comment},
                    )
                except httpx.HTTPError:
                    return  # the server is gone: this decision was never acknowledged
                if 200 <= response.status_code < 300:
                    with self.lock:
                        self.acknowledged.add(comment)

    def assess(self, writer: int) -> None:
        """Intake posts photos at the same time; a 2xx means the case (photo and row) is stored."""
        headers = {"Authorization": f"Bearer {INTAKE}"}
        with httpx.Client(timeout=10) as client:
            for sequence in range(100_000):
                if self.stop.is_set():
                    return
                photo = encode_image((0, (writer * 50 + sequence) % 256, 255), size=(96, 64 + sequence % 32))
                try:
                    response = client.post(
                        f"{self.base_url}/v1/photos/assess",
                        headers=headers,
                        files={"photo": ("p.jpg", photo, "image/jpeg")},
                    )
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with self.lock:
                        self.assessed.add(response.json()["photo_id"])

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)


def stored_comments(base_url: str, cases: list[str]) -> set[str]:
    headers = {"Authorization": f"Bearer {REVIEWER}"}
    comments = set()
    for case in cases:
        response = httpx.get(f"{base_url}/v1/review/{case}", headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        comments |= {entry["comment"] for entry in response.json()["history"]}
    return comments


def stored_photos(base_url: str, photo_ids: list[str]) -> int:
    """How many acknowledged assessments have their case and a decodable photo after the restart."""
    headers, served_ok = {"Authorization": f"Bearer {REVIEWER}"}, 0
    for photo_id in photo_ids:
        case = httpx.get(f"{base_url}/v1/review/{photo_id}", headers=headers, timeout=30)
        photo = httpx.get(f"{base_url}/v1/review/{photo_id}/photo", headers=headers, timeout=30)
        if case.status_code == 200 and photo.status_code == 200:
            Image.open(io.BytesIO(photo.content)).load()
            served_ok += 1
    return served_ok


def test_acknowledged_decisions_survive_sigkill(tmp_path):
    env = {
        **os.environ,
        "ANKANG_DATA_DIR": str(tmp_path / "var"),
        "ANKANG_AUTH": "on",
        "ANKANG_API_KEYS": f"intake:{INTAKE},reviewer:{REVIEWER}:复核员",
        "ANKANG_PHOTO_MODEL_DIR": str(write_toy_photo_model(tmp_path / "models" / "hazard_photo")),
    }
    with served(env) as (base_url, process):
        cases = create_cases(base_url)
        writers = DecisionWriters(base_url, cases)
        with ThreadPoolExecutor(WRITERS + ASSESSORS) as pool:
            for writer in range(WRITERS):
                pool.submit(writers.write, writer)
            for writer in range(ASSESSORS):
                pool.submit(writers.assess, writer)
            deadline = time.monotonic() + 60
            while writers.count() < KILL_AFTER_ACKS and time.monotonic() < deadline:
                time.sleep(0.01)
            stop_server(process, sig=signal.SIGKILL)  # mid-write: requests are in flight on every thread
            writers.stop.set()
    acknowledged = writers.acknowledged
    assert len(acknowledged) >= KILL_AFTER_ACKS
    with served(env) as (base_url, _):
        found = stored_comments(base_url, cases)
        photos_back = stored_photos(base_url, sorted(writers.assessed))
    print(
        f"acknowledged {len(acknowledged)} decisions, found after restart {len(found)}; "
        f"acknowledged {len(writers.assessed)} assessments, photos served after restart {photos_back}"
    )
    assert acknowledged <= found, f"lost {len(acknowledged - found)} acknowledged decisions"
    assert photos_back == len(writers.assessed) > 0
    with sqlite3.connect(tmp_path / "var" / "review" / "review.db") as database:
        assert database.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_tampered_model_refuses_to_start(tmp_path):
    """BentoML respawns a worker whose startup fails, so "refuses" means: never ready, and says why."""
    model_dir = write_toy_photo_model(tmp_path / "models" / "hazard_photo")
    with open(model_dir / "model.onnx", "ab") as handle:
        handle.write(b"\0")  # one byte appended: the card's sha256 no longer matches
    env = {
        **os.environ,
        "ANKANG_DATA_DIR": str(tmp_path / "var"),
        "ANKANG_AUTH": "on",
        "ANKANG_API_KEYS": f"intake:{INTAKE}",
        "ANKANG_PHOTO_MODEL_DIR": str(model_dir),
    }
    port, log_path = free_port(), tmp_path / "server.log"
    with open(log_path, "w") as log:
        process = start_server(env, port=port, log=log)
    try:
        deadline, refused, was_ready = time.monotonic() + 90, False, False
        while time.monotonic() < deadline and not refused:
            time.sleep(0.5)
            was_ready |= ready(f"http://127.0.0.1:{port}")
            refused = "so the service refuses to load it" in log_path.read_text(errors="replace")
        was_ready |= ready(f"http://127.0.0.1:{port}")
    finally:
        stop_server(process, sig=signal.SIGKILL)
    assert refused, log_path.read_text(errors="replace")[-2000:]
    assert not was_ready
    assert "ModelIntegrityError" in log_path.read_text(errors="replace")
