"""N API replicas behind HAProxy on this machine, sharing PostgreSQL, Redis and one photo store, and
the mixed load that the replica test and `benchmarks/replicas.py` drive through them.

Each replica is `bentoml serve serving.service:Ankang` (as `make run` starts it) with its own
ANKANG_DATA_DIR, so anything kept on a replica's own disk or memory would show up as a lost write or
a broken limit. HAProxy balances round-robin without stickiness and checks /readyz every 0.5 s.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.server import clean_env, free_port, start_server, stop_server, wait_until_ready
from tests.serving.conftest import encode_image

INTAKE, REVIEWER = "intake-replica-key-5d1f0c77", "reviewer-replica-key-a93e61b2"
API_KEYS = f"intake:{INTAKE},reviewer:{REVIEWER}:王安全"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
RECEIPT_LIMIT = 30  # serving.orders.receipts.RateLimiter's default: lookups per address per minute

HAPROXY_CONFIG = """\
global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 2
    option redispatch
frontend api
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
{servers}
"""


@dataclass
class Cluster:
    url: str
    replicas: list[subprocess.Popen]
    database_url: str

    def kill(self, index: int) -> None:
        """SIGKILL replica `index` and every process of its group (arbiter and API workers)."""
        stop_server(self.replicas[index], sig=signal.SIGKILL)


def replica_env(work: Path, index: int, *, database_url: str, redis_url: str, photo_model_dir: Path) -> dict:
    return clean_env(
        ANKANG_DATA_DIR=str(work / f"replica-{index}"),
        ANKANG_DATABASE_URL=database_url,
        ANKANG_REDIS_URL=redis_url,
        ANKANG_PHOTO_STORE=str(work / "photos"),
        ANKANG_API_KEYS=API_KEYS,
        ANKANG_SESSION_SECRET="s" * 40,
        ANKANG_PSEUDONYM_KEY="p" * 40,
        ANKANG_PHOTO_MODEL_DIR=str(photo_model_dir),
        ANKANG_API_WORKERS="1",
        ANKANG_ORT_THREADS="1",
        BENTOML_HOME=str(work / f"bentoml-{index}"),
    )


@contextmanager
def cluster(
    work: Path, *, replicas: int, database_url: str, redis_url: str, photo_model_dir: Path
) -> Iterator[Cluster]:
    """Start `replicas` servers and HAProxy in front of them; stop everything afterwards."""
    ports = [free_port() for _ in range(replicas)]
    with ExitStack() as stack:
        processes = []
        for index, port in enumerate(ports):
            log = stack.enter_context(open(work / f"replica-{index}.log", "wb"))
            env = replica_env(
                work, index, database_url=database_url, redis_url=redis_url, photo_model_dir=photo_model_dir
            )
            processes.append(start_server(env, port=port, log=log))
            stack.callback(_stop_quietly, processes[-1])
        for process, port in zip(processes, ports):
            wait_until_ready(f"http://127.0.0.1:{port}", process, timeout_seconds=180)
        front = free_port()
        servers = "\n".join(f"    server r{i} 127.0.0.1:{p} check inter 500 fall 1 rise 2" for i, p in enumerate(ports))
        (work / "haproxy.cfg").write_text(HAPROXY_CONFIG.format(port=front, servers=servers))
        haproxy = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(work / "haproxy.cfg")],
            stdout=stack.enter_context(open(work / "haproxy.log", "wb")),
            stderr=subprocess.STDOUT,
        )
        stack.callback(_stop_quietly, haproxy)
        url = f"http://127.0.0.1:{front}"
        wait_until_ready(url, haproxy, timeout_seconds=30)
        yield Cluster(url=url, replicas=processes, database_url=database_url)


def _stop_quietly(process: subprocess.Popen) -> None:
    if process.poll() is None:
        if process.args[0] == HAPROXY:
            process.terminate()
            process.wait(timeout=10)
        else:
            stop_server(process)


@dataclass
class LoadResult:
    seconds: float
    acknowledged_assessments: set[str] = field(default_factory=set)
    acknowledged_decisions: set[str] = field(default_factory=set)
    lookups_admitted: int = 0
    lookups_refused: int = 0
    requests: int = 0
    failed_attempts: int = 0  # attempts answered 5xx or cut off, each retried
    given_up: int = 0  # operations still failing after every retry
    latencies: list[float] = field(default_factory=list)


class MixedLoad:
    """`clients` threads for `seconds`: a quarter post photos (intake), half post decisions on known
    cases (reviewer), a quarter look reports up by receipt (throttled per address) and read the queue.
    A failed attempt (connection cut, 502/503 from HAProxy) is retried up to 5 times."""

    def __init__(self, url: str, *, clients: int, seconds: float, seed_cases: list[str]):
        self.url, self.clients, self.seconds = url, clients, seconds
        self.cases = list(seed_cases)
        self.result = LoadResult(seconds=seconds)
        self.lock = threading.Lock()

    def run(self, *, at: float | None = None, action=None) -> LoadResult:
        """Drive the load; `action()` runs once, `at` seconds in (the replica kill)."""
        deadline = time.monotonic() + self.seconds
        threads = [threading.Thread(target=self._client, args=(index, deadline)) for index in range(self.clients)]
        for thread in threads:
            thread.start()
        if action is not None:
            time.sleep(at)
            action()
        for thread in threads:
            thread.join()
        return self.result

    def _client(self, index: int, deadline: float) -> None:
        rng = random.Random(index)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            sequence = 0
            while time.monotonic() < deadline:
                sequence += 1
                kind = index % 4
                if kind == 0:
                    self._assess(client, index, sequence)
                elif kind in (1, 2):
                    self._decide(client, rng, f"c{index}-n{sequence}")
                else:
                    self._look_up(client, rng)

    def _attempt(self, send) -> httpx.Response | None:
        for _ in range(6):
            started = time.perf_counter()
            try:
                response = send()
            except httpx.HTTPError:
                response = None
            with self.lock:
                self.result.requests += 1
                if response is not None and response.status_code < 500:
                    self.result.latencies.append(time.perf_counter() - started)
                    return response
                self.result.failed_attempts += 1
            time.sleep(0.2)
        with self.lock:
            self.result.given_up += 1
        return None

    def _assess(self, client: httpx.Client, index: int, sequence: int) -> None:
        photo = encode_image((255, (index * 31 + sequence) % 256, sequence % 256), size=(96, 64 + sequence % 32))
        response = self._attempt(
            lambda: client.post(
                "/v1/photos/assess",
                headers={"Authorization": f"Bearer {INTAKE}"},
                files={"photo": ("p.jpg", photo, "image/jpeg")},
                data={"site_id": "replicas"},
            )
        )
        if response is not None and response.status_code == 200:
            photo_id = response.json()["photo_id"]
            with self.lock:
                self.result.acknowledged_assessments.add(photo_id)
                self.cases.append(photo_id)

    def _decide(self, client: httpx.Client, rng: random.Random, comment: str) -> None:
        with self.lock:
            case = rng.choice(self.cases)
        response = self._attempt(
            lambda: client.post(
                f"/v1/review/{case}",
                headers={"Authorization": f"Bearer {REVIEWER}"},
                json={"decision": "confirm", "comment": comment},
            )
        )
        if response is not None and 200 <= response.status_code < 300:
            with self.lock:
                self.result.acknowledged_decisions.add(comment)

    def _look_up(self, client: httpx.Client, rng: random.Random) -> None:
        if rng.random() < 0.5:
            self._attempt(lambda: client.get("/v1/review/queue", headers={"Authorization": f"Bearer {REVIEWER}"}))
            return
        response = self._attempt(lambda: client.get(f"/v1/reports/{uuid.uuid4().hex[:12].upper()}"))
        if response is not None:
            with self.lock:
                if response.status_code == 429:
                    self.result.lookups_refused += 1
                else:
                    self.result.lookups_admitted += 1


def seed_cases(url: str, count: int = 8) -> list[str]:
    ids = []
    for index in range(count):
        response = httpx.post(
            f"{url}/v1/photos/assess",
            headers={"Authorization": f"Bearer {INTAKE}"},
            files={"photo": ("p.jpg", encode_image((255, index * 20, 0)), "image/jpeg")},
            timeout=30,
        )
        response.raise_for_status()
        ids.append(response.json()["photo_id"])
    return ids


def stored(database_url: str) -> tuple[set[str], set[str]]:
    """Photo ids of every case and comments of every decision in the shared database."""
    import sqlalchemy as sa

    from serving.review.schema import cases, decisions

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            photo_ids = set(connection.execute(sa.select(cases.c.photo_id)).scalars())
            comments = set(connection.execute(sa.select(decisions.c.comment)).scalars())
    finally:
        engine.dispose()
    return photo_ids, comments


def clear_throttle(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    for name in client.scan_iter("ankang:*"):
        client.delete(name)
