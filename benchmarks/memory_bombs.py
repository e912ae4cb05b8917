"""Worker memory under the two bombs of issue 21: peak and settled RSS of each API worker.

    .venv/bin/python benchmarks/memory_bombs.py                          # this checkout
    .venv/bin/python benchmarks/memory_bombs.py --tree /tmp/before --label before   # another tree's code

Starts `python -m bentoml serve serving.service:Ankang` with `--tree` first on PYTHONPATH (2 API
workers, an intake key, a fresh data folder, this checkout's models), then:

1. the Parquet bomb: one 20,000,000-row dictionary-encoded zstd Parquet (61 KB) to
   `POST /v1/enterprises/score-file`;
2. the PNG burst: 16 concurrent uploads of a 39.7-megapixel all-zero PNG (7296 x 5440, 112 KB) to
   `POST /v1/photos/assess`.

Each process of the server is sampled every 50 ms during a bomb (peak) and 10 s after it (settled).
Writes results/memory_bombs_<label>.json and prints the rows for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PNG_SIZE = (7296, 5440)  # 39.69 MP, under the 40 MP limit


def burst_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", PNG_SIZE).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def parquet_bomb(rows: int = 20_000_000) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["E100"]))
    buffer = io.BytesIO()
    pq.write_table(pa.table({"enterprise_id": ids}), buffer, compression="zstd", use_dictionary=True)
    return buffer.getvalue()


class RssSampler:
    """Peak RSS of every process of the server, sampled in a thread while a bomb runs."""

    def __init__(self, root: psutil.Process):
        self.root, self.peaks, self._stop = root, {}, threading.Event()

    def processes(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def snapshot(self) -> dict[int, int]:
        sizes = {}
        for process in self.processes():
            try:
                sizes[process.pid] = process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return sizes

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid, rss in self.snapshot().items():
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss)
            time.sleep(0.05)

    def __enter__(self) -> RssSampler:
        self.peaks, self._stop = {}, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def start(tree: Path, port: int, data_dir: Path, key: str) -> subprocess.Popen:
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("ANKANG_")},
        "PYTHONPATH": str(tree),
        "ANKANG_API_KEYS": f"intake:{key}",
        "ANKANG_DATA_DIR": str(data_dir),
        "ANKANG_MODELS_DIR": str(ROOT / "models"),
        "ANKANG_API_WORKERS": "2",
        "ANKANG_RELOAD_POLL_SECONDS": "3600",
    }
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:Ankang", "--port", str(port)]
    log = open(data_dir / "server.log", "w")
    return subprocess.Popen(command, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(base: str, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited; see its server.log")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{base} not ready in {timeout} s")


def workers(sampler: RssSampler, baseline: dict[int, int]) -> list[int]:
    """The API worker processes: the server's children that hold a model (the largest at rest)."""
    children = sorted(baseline.items(), key=lambda item: -item[1])
    return [pid for pid, _ in children if pid != sampler.root.pid][:2]


def bomb(name: str, send, sampler: RssSampler, worker_pids: list[int], settle: float) -> dict:
    with sampler:
        started = time.monotonic()
        statuses = send()
        seconds = time.monotonic() - started
    time.sleep(settle)
    settled = sampler.snapshot()
    mib = lambda size: round(size / 2**20)  # noqa: E731
    row = {
        "bomb": name,
        "statuses": statuses,
        "seconds": round(seconds, 1),
        "peak_rss_mib": [mib(sampler.peaks.get(pid, 0)) for pid in worker_pids],
        "settled_rss_mib": [mib(settled.get(pid, 0)) for pid in worker_pids],
    }
    print(json.dumps(row))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose serving code runs")
    parser.add_argument("--label", default="after")
    parser.add_argument("--port", type=int, default=3300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after a bomb before 'settled'")
    args = parser.parse_args()
    png, parquet = burst_png(), parquet_bomb()
    key = f"ank_{secrets.token_urlsafe(24)}"
    base, headers = f"http://127.0.0.1:{args.port}", {"Authorization": f"Bearer {key}"}
    with tempfile.TemporaryDirectory(prefix="memory-bombs-") as data:
        process = start(args.tree.resolve(), args.port, Path(data), key)
        try:
            wait_ready(base, process)
            sampler = RssSampler(psutil.Process(process.pid))
            time.sleep(3)
            idle = sampler.snapshot()
            worker_pids = workers(sampler, idle)

            def png_burst() -> dict[int, int]:
                def one(_):
                    files = {"photo": ("zeros.png", png, "image/png")}
                    return httpx.post(f"{base}/v1/photos/assess", files=files, headers=headers, timeout=300).status_code

                with ThreadPoolExecutor(args.clients) as pool:
                    codes = list(pool.map(one, range(args.clients)))
                return {code: codes.count(code) for code in set(codes)}

            def parquet_upload() -> dict[int, int]:
                files = {"file": ("bomb.parquet", parquet, "application/octet-stream")}
                code = httpx.post(f"{base}/v1/enterprises/score-file", files=files, headers=headers, timeout=300)
                return {code.status_code: 1}

            rows = [  # the Parquet bomb first, on fresh workers: after the burst its growth would hide
                bomb(
                    f"Parquet 20,000,000 rows ({len(parquet) // 1024} KB)",
                    parquet_upload,
                    sampler,
                    worker_pids,
                    args.settle,
                ),
                bomb(
                    f"{args.clients} x {PNG_SIZE[0]}x{PNG_SIZE[1]} PNG ({len(png) // 1024} KB)",
                    png_burst,
                    sampler,
                    worker_pids,
                    args.settle,
                ),
            ]
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
    result = {
        "label": args.label,
        "tree": str(args.tree),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg": os.getloadavg(),
        "idle_rss_mib": [round(idle.get(pid, 0) / 2**20) for pid in worker_pids],
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"memory_bombs_{args.label}.json").write_text(json.dumps(result, indent=2))
    print(f"| bomb | {args.label}: answers | peak RSS per worker (MiB) | settled (MiB) | idle (MiB) |")
    for row in rows:
        print(
            f"| {row['bomb']} | {row['statuses']} | {row['peak_rss_mib']} | {row['settled_rss_mib']} | "
            f"{result['idle_rss_mib']} |"
        )


if __name__ == "__main__":
    main()
