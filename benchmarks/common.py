"""Shared benchmark plumbing: run metadata, median-of-runs timing, result files, a served Ankang.

Every script writes `benchmarks/results/<name>.json` (machine, date, command, load average,
each measurement with all runs and their median) and prints a Markdown table; README.md's
results table is copied from those files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
PHOTO_DATA = ROOT / "datasets" / "site-hazard-photos"
VENV_BIN = ROOT / ".venv" / "bin"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> dict[str, Any]:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "host": platform.node(),
    }


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def loadavg() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


@dataclass
class Measurement:
    """One row of the results table: the median of several runs of one configuration."""

    name: str
    unit: str
    runs: list[float]
    extra: dict[str, Any] = field(default_factory=dict)
    load: list[float] = field(default_factory=loadavg)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "median": round(self.median, 3),
            "runs": [round(run, 3) for run in self.runs],
            "load": self.load,
            **self.extra,
        }


def timed_rate(
    work: Callable[[], int], *, repeats: int, warmup: int = 1, name: str, unit: str, **extra: Any
) -> Measurement:
    """Items per second of `work()` (which returns how many items it handled), median of `repeats`."""
    for _ in range(warmup):
        work()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        runs.append(items / (time.perf_counter() - start))
    return Measurement(name=name, unit=unit, runs=runs, extra=extra)


def save_results(name: str, measurements: list[Measurement], *, notes: dict[str, Any] | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": git_commit(),
        "machine": machine(),
        "notes": notes or {},
        "measurements": [m.to_dict() for m in measurements],
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(measurements))
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def markdown_table(measurements: list[Measurement]) -> str:
    lines = ["| measurement | median | unit | runs | load (1/5/15 min) |", "|:--|--:|:--|:--|:--|"]
    for m in measurements:
        runs = ", ".join(f"{run:.4g}" for run in m.runs)
        lines.append(f"| {m.name} | {m.median:.4g} | {m.unit} | {runs} | {'/'.join(map(str, m.load))} |")
    return "\n".join(lines)


def photo_bytes(*, split: str, count: int) -> list[bytes]:
    """`count` photos of `split` as uploaded bytes, spread over all sources (every k-th row)."""
    import pandas as pd

    manifest = pd.read_csv(PHOTO_DATA / "manifest.csv")
    rows = manifest[manifest["split"] == split]
    step = max(1, len(rows) // count)
    return [(PHOTO_DATA / image).read_bytes() for image in rows["image"].iloc[::step][:count]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    base_url: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def resident_mb(self) -> float:
        """Resident memory of the whole service: the bentoml process and all its children."""
        import psutil

        root = psutil.Process(self.process.pid)
        processes = [root, *root.children(recursive=True)]
        total = 0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total / 2**20


@contextlib.contextmanager
def served(*, env: dict[str, str] | None = None, timeout: float = 180.0) -> Iterator[Server]:
    """Start `bentoml serve serving.service:Ankang` (like `make run`) with an intake API key;
    stop it (by its own process group) when the block ends."""
    port, key = free_port(), f"ank_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"
    data_dir = RESULTS_DIR.parent / "var" / f"serve-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "ANKANG_API_KEYS": f"intake:{key}",
        "ANKANG_DATA_DIR": str(data_dir),
        "ANKANG_RELOAD_POLL_SECONDS": "3600",
        **(env or {}),
    }
    log = open(data_dir / "server.log", "w")
    process = subprocess.Popen(
        [str(VENV_BIN / "bentoml"), "serve", "serving.service:Ankang", "--port", str(port)],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(process=process, base_url=f"http://127.0.0.1:{port}", api_key=key)
    try:
        _wait_ready(server, timeout=timeout, log_path=data_dir / "server.log")
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
        log.close()


def _wait_ready(server: Server, *, timeout: float, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode}; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + "/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the server was not ready after {timeout:.0f} s; see {log_path}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
