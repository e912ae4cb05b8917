"""Mixed load: 32 concurrent clients against a served Ankang for 60 s; zero failures, flat memory.

    .venv/bin/python benchmarks/load_mixed.py                       # starts `bentoml serve` like `make run`
    .venv/bin/python benchmarks/load_mixed.py --clients 32 --seconds 60 --warmup 10

Each client loops over a weighted mix: photo assessments (real photos of the test split),
single-enterprise and 100-enterprise risk scoring (`POST /v1/enterprises/score`, generated
profiles) and review-queue reads (`GET /v1/review/queue`), with an intake and a reviewer key
(auth on, as in production). A request fails if it raises or answers anything but 2xx.
Resident memory is the sum over the bentoml process and all its children (psutil), sampled every
second; "stable" means the mean of the last 10 s is within 10 % of the first 10 s. Endpoints the
server does not publish in /docs.json are left out of the mix and named in the results.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import secrets
import statistics
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PHOTO_DATA, Measurement, percentile, save_results, served  # noqa: E402

MIX = {"photo": 0.35, "risk_single": 0.25, "risk_batch": 0.10, "queue": 0.30}
NEEDS_PATH = {
    "photo": "/v1/photos/assess",
    "risk_single": "/v1/enterprises/score",
    "risk_batch": "/v1/enterprises/score",
    "queue": None,
}  # the review API is mounted, not in /docs.json
STABLE_RSS_CHANGE = 0.10


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default: 32)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured duration (default: 60)")
    parser.add_argument("--warmup", type=float, default=10.0, help="unmeasured load first, seconds (default: 10)")
    parser.add_argument("--batch", type=int, default=100, help="enterprises per batch risk request (default: 100)")
    parser.add_argument("--seed", type=int, default=20261126, help="seed for the request mix and profiles")
    parser.add_argument("--name", default="load_mixed", help="results file name in benchmarks/results/")
    return parser


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def record(self, kind: str, seconds: float, problem: str | None) -> None:
        if problem is None:
            self.latencies[kind].append(seconds)
        else:
            self.failures[kind].append(problem)


def photos(count: int = 40) -> list[bytes]:
    if (PHOTO_DATA / "manifest.csv").is_file():
        from benchmarks.common import photo_bytes

        return photo_bytes(split="test", count=count)
    from PIL import Image

    images = []
    for index in range(count):
        buffer = io.BytesIO()
        Image.new("RGB", (640, 480), (index * 6 % 256, 80, 160)).save(buffer, format="JPEG")
        images.append(buffer.getvalue())
    return images


def profiles(rows: int, *, seed: int) -> list[dict]:
    from training.risk.config import GeneratorConfig
    from training.risk.generator import generate

    frame = generate(GeneratorConfig(rows=rows, seed=seed)).drop(columns=["tier"])
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


class Requests:
    """Builds one request of each kind; all randomness from one seeded generator per client."""

    def __init__(self, *, photos: list[bytes], profiles: list[dict], batch: int, keys: dict[str, str]):
        self.photos, self.profiles, self.batch = photos, profiles, batch
        self.intake = {"Authorization": f"Bearer {keys['intake']}"}
        self.reviewer = {"Authorization": f"Bearer {keys['reviewer']}"}

    def send(self, client, kind: str, rng: random.Random):
        if kind == "photo":
            photo = rng.choice(self.photos)
            return client.post(
                "/v1/photos/assess",
                files={"photo": ("site.jpg", photo, "image/jpeg")},
                data={"site_id": f"load-{rng.randrange(50)}", "channel": "load"},
                headers=self.intake,
            )
        if kind == "risk_single":
            return client.post(
                "/v1/enterprises/score", json={"enterprises": [rng.choice(self.profiles)]}, headers=self.intake
            )
        if kind == "risk_batch":
            start = rng.randrange(len(self.profiles) - self.batch)
            return client.post(
                "/v1/enterprises/score",
                json={"enterprises": self.profiles[start : start + self.batch]},
                headers=self.intake,
            )
        return client.get("/v1/review/queue", params={"limit": 50}, headers=self.reviewer)


async def client_loop(
    client, requests: Requests, kinds: list[str], weights: list[float], *, seed: int, until: float, tally: Tally | None
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        kind = rng.choices(kinds, weights)[0]
        start = time.perf_counter()
        try:
            response = await requests.send(client, kind, rng)
            problem = None if 200 <= response.status_code < 300 else f"{response.status_code} {response.text[:200]}"
        except Exception as error:  # a failed request is a result here, not a crash of the benchmark
            problem = f"{type(error).__name__}: {error}"
        if tally is not None:
            tally.record(kind, time.perf_counter() - start, problem)


async def run_load(
    base_url: str, requests: Requests, kinds: list[str], *, clients: int, seconds: float, seed: int, tally: Tally | None
) -> None:
    import httpx

    weights = [MIX[kind] for kind in kinds]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(
                client_loop(client, requests, kinds, weights, seed=seed + index, until=until, tally=tally)
                for index in range(clients)
            )
        )


class MemorySampler(threading.Thread):
    """Samples the server's resident memory (MB) once a second with the time since start."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.samples, self.stopped = server, [], threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stopped.wait(1.0):
            self.samples.append((time.monotonic() - start, self.server.resident_mb()))

    def window_mean(self, *, first: bool, seconds: float = 10.0) -> float:
        end = self.samples[-1][0]
        chosen = [mb for t, mb in self.samples if (t <= seconds if first else t >= end - seconds)]
        return statistics.mean(chosen)


def served_kinds(base_url: str) -> tuple[list[str], list[str]]:
    import httpx

    paths = httpx.get(f"{base_url}/docs.json", timeout=30).json()["paths"]
    kinds = [kind for kind, path in NEEDS_PATH.items() if path is None or path in paths]
    return kinds, [kind for kind in MIX if kind not in kinds]


def measurements(tally: Tally, sampler: MemorySampler, *, seconds: float, clients: int) -> list[Measurement]:
    rows = []
    for kind in sorted(set(tally.latencies) | set(tally.failures)):
        done = tally.latencies[kind]
        ms = [1000 * value for value in done] or [0.0]
        rows.append(
            Measurement(
                name=f"{kind}: requests/s ({clients} clients, mixed)",
                unit="req/s",
                runs=[len(done) / seconds],
                extra={
                    "ok": len(done),
                    "failed": len(tally.failures[kind]),
                    "p50_ms": round(percentile(ms, 50), 1),
                    "p95_ms": round(percentile(ms, 95), 1),
                    "p99_ms": round(percentile(ms, 99), 1),
                    "failures_sample": tally.failures[kind][:5],
                },
            )
        )
    first, last = sampler.window_mean(first=True), sampler.window_mean(first=False)
    rows.append(Measurement(name="resident memory, all server processes: first 10 s mean", unit="MB", runs=[first]))
    rows.append(
        Measurement(
            name="resident memory, all server processes: last 10 s mean",
            unit="MB",
            runs=[last],
            extra={"change": round(last / first - 1, 4), "samples": [round(mb, 1) for _, mb in sampler.samples]},
        )
    )
    return rows


def report(tally: Tally, rows: list[Measurement]) -> bool:
    failed = sum(len(problems) for problems in tally.failures.values())
    first, last = rows[-2].median, rows[-1].median
    stable = last <= first * (1 + STABLE_RSS_CHANGE)
    print("\n| kind | ok | failed | req/s | p50 ms | p95 ms | p99 ms |\n|:--|--:|--:|--:|--:|--:|--:|")
    for row in rows[:-2]:
        print(
            f"| {row.name.split(':')[0]} | {row.extra['ok']} | {row.extra['failed']} | {row.median:.1f} | "
            f"{row.extra['p50_ms']} | {row.extra['p95_ms']} | {row.extra['p99_ms']} |"
        )
    print(
        f"\nfailed requests: {failed}; resident memory first 10 s {first:.0f} MB, last 10 s {last:.0f} MB "
        f"({100 * (last / first - 1):+.1f} %): {'stable' if stable else 'GROWING'}"
    )
    return failed == 0 and stable


def main(args: argparse.Namespace) -> int:
    keys = {role: f"{role}-load-{secrets.token_hex(12)}" for role in ("intake", "reviewer")}
    env = {"ANKANG_API_KEYS": ",".join(f"{role}:{key}" for role, key in keys.items()), "ANKANG_LOG_LEVEL": "WARNING"}
    requests = Requests(photos=photos(), profiles=profiles(2_000, seed=args.seed), batch=args.batch, keys=keys)
    with served(env=env) as server:
        kinds, missing = served_kinds(server.base_url)
        print(f"mix: {', '.join(kinds)}" + (f"; not served, left out: {', '.join(missing)}" if missing else ""))
        asyncio.run(
            run_load(
                server.base_url, requests, kinds, clients=args.clients, seconds=args.warmup, seed=args.seed, tally=None
            )
        )
        tally, sampler = Tally(), MemorySampler(server)
        sampler.start()
        asyncio.run(
            run_load(
                server.base_url,
                requests,
                kinds,
                clients=args.clients,
                seconds=args.seconds,
                seed=args.seed + 1000,
                tally=tally,
            )
        )
        sampler.stopped.set()
        sampler.join()
    rows = measurements(tally, sampler, seconds=args.seconds, clients=args.clients)
    passed = report(tally, rows)
    save_results(
        args.name,
        rows,
        notes={
            "clients": args.clients,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "mix": {kind: MIX[kind] for kind in kinds},
            "left_out": missing,
            "passed": passed,
        },
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
