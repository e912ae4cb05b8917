"""Photo API over HTTP: p50/p99 latency and throughput at 1, 8 and 32 concurrent clients.

    .venv/bin/python benchmarks/photo_http.py                       # starts `bentoml serve` itself
    .venv/bin/python benchmarks/photo_http.py --server-env ANKANG_MAX_BATCH_SIZE=8 --name photo_http_b8
    .venv/bin/python benchmarks/photo_http.py --url http://127.0.0.1:3000 --api-key KEY   # a running server
    .venv/bin/python benchmarks/photo_http.py --side-by-side --concurrency 1 32   # issue 20's rows, one run

An asyncio aiohttp load generator (it shares the 2 cores with the server: aiohttp needs about a
third of httpx's CPU per request, so less of the machine goes to the generator): each client uploads test photos
(multipart `photo`) to
`POST /v1/photos/assess` back to back for `--seconds`; every level runs `--repeats` times and
the median of each statistic is reported, with the ratio to the in-process pipeline's
throughput (same photos, same batch size) and the service's resident memory (all its processes)
after the load. With `--side-by-side` the in-process pipeline (photo_inprocess.py's decode +
resize + onnxruntime) is measured first in this run, at batch 1 and 32, and the ratios divide by
it; otherwise they divide by the last `benchmarks/results/photo_inprocess.json`, which may come
from another run or machine.

Each level also gives the CPU time per answered photo: the service's processes (all of them) and
the load generator's. Unlike photos/s, these hardly change when other work shares the cores, so
they compare changes made while the machine is loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS_DIR, Measurement, loadavg, percentile, photo_bytes, save_results, served  # noqa: E402
from runtime.paths import MODELS_DIR  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=15.0, help="load duration of one run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per concurrency level (median reported)")
    parser.add_argument("--photos", type=int, default=64, help="test photos cycled through by the clients")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for the started server, e.g. ANKANG_MAX_BATCH_SIZE=8 (repeatable)",
    )
    parser.add_argument("--url", default=None, help="use this running server instead of starting one")
    parser.add_argument("--api-key", default=None, help="intake API key for --url")
    parser.add_argument("--label", default=None, help="configuration label in the table (default: from --server-env)")
    parser.add_argument("--name", default="photo_http", help="results file name in benchmarks/results/")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="first measure the in-process pipeline (batch 1 and 32) in this run; ratios divide by it",
    )
    return parser


async def client(
    http, url: str, photos: list[bytes], offset: int, stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    import aiohttp

    index = offset
    while time.perf_counter() < stop_at:
        form = aiohttp.FormData()
        form.add_field("photo", photos[index % len(photos)], filename="site.jpg", content_type="image/jpeg")
        index += 1
        start = time.perf_counter()
        async with http.post(url, data=form) as response:
            await response.read()
            if response.status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors.append(response.status)


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live children."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


async def one_run(
    base_url: str, headers: dict, photos: list[bytes], *, concurrency: int, seconds: float, server_pid: int | None
) -> dict:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        headers=headers, connector=connector, timeout=aiohttp.ClientTimeout(total=120)
    ) as http:
        url = base_url + "/v1/photos/assess"
        warm_until = time.perf_counter() + 2.0
        await asyncio.gather(*(client(http, url, photos, i, warm_until, [], []) for i in range(concurrency)))
        latencies, errors = [], []
        server_cpu, client_cpu = process_tree_cpu(server_pid) if server_pid else 0.0, time.process_time()
        start = time.perf_counter()
        await asyncio.gather(
            *(client(http, url, photos, i * 7, start + seconds, latencies, errors) for i in range(concurrency))
        )
        elapsed = time.perf_counter() - start
        client_cpu = time.process_time() - client_cpu
        server_cpu = process_tree_cpu(server_pid) - server_cpu if server_pid else None
    if not latencies:
        raise RuntimeError(f"every request failed (HTTP {sorted(set(errors))}); see the server log")
    answered = len(latencies) + len(errors)
    return {
        "server_cpu_ms": 1000 * server_cpu / answered if server_cpu is not None else None,
        "client_cpu_ms": 1000 * client_cpu / answered,
        "throughput": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "requests": len(latencies),
        "errors": errors,
    }


def inprocess_rate(batch: int, measured: dict[int, float]) -> float | None:
    """In-process decode + resize + onnxruntime photos/s at `batch`: measured in this run, else from the
    last photo_inprocess run."""
    if measured:
        return measured.get(batch)
    path = RESULTS_DIR / "photo_inprocess.json"
    if not path.is_file():
        return None
    rows = json.loads(path.read_text())["measurements"]
    matches = [
        row["median"]
        for row in rows
        if "decode + resize + onnxruntime" in row["name"] and row.get("batch") == batch and "int8" not in row["name"]
    ]
    return matches[0] if matches else None


def inprocess_rows(photos: list[bytes], args, model_dir: Path) -> tuple[list[Measurement], dict[int, float]]:
    """photo_inprocess.py's decode + resize + onnxruntime rows at the batch sizes the levels compare to,
    measured now, before the server starts (the same photos, the server's model, 2 threads)."""
    from benchmarks.common import timed_rate
    from benchmarks.photo_inprocess import pipeline_work
    from serving.photo import PhotoModel

    model = PhotoModel(model_dir)
    label = f"in-process, same run ({model.card.size[0]} px): decode + resize + onnxruntime"
    rows = []
    for batch in sorted({min(concurrency, 32) for concurrency in args.concurrency}):
        work = pipeline_work(model, photos, batch)
        cpu = time.process_time()
        row = timed_rate(work, repeats=args.repeats, name=f"{label}, batch {batch}", unit="photos/s", batch=batch)
        passes = args.repeats + 1  # timed_rate's warm-up pass and the timed ones
        row.extra["cpu_ms_per_photo"] = round(1000 * (time.process_time() - cpu) / (len(photos) * passes), 2)
        print(f"  in-process batch {batch}: {row.median:.1f} photos/s, {row.extra['cpu_ms_per_photo']} ms CPU a photo")
        rows.append(row)
    return rows, {row.extra["batch"]: row.median for row in rows}


def level_rows(
    base_url: str, headers: dict, photos: list[bytes], args, label: str, *, server_pid=None, measured=None
) -> list[Measurement]:
    rows = []
    for concurrency in args.concurrency:
        runs = [
            asyncio.run(
                one_run(base_url, headers, photos, concurrency=concurrency, seconds=args.seconds, server_pid=server_pid)
            )
            for _ in range(args.repeats)
        ]
        throughput = [run["throughput"] for run in runs]
        reference = inprocess_rate(min(concurrency, 32), measured or {})
        extra = {
            "concurrency": concurrency,
            "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 1),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 1),
            "requests": sum(r["requests"] for r in runs),
            "config": label,
            "failed": sum(len(r["errors"]) for r in runs),
            "failed_status": sorted({code for r in runs for code in r["errors"]}),
            "inprocess_photos_per_s": reference,
            "inprocess_measured": "this run" if measured else "results/photo_inprocess.json",
            "ratio_to_inprocess": round(statistics.median(throughput) / reference, 3) if reference else None,
            "server_cpu_ms_per_photo": _median_of(runs, "server_cpu_ms"),
            "client_cpu_ms_per_photo": _median_of(runs, "client_cpu_ms"),
        }
        rows.append(
            Measurement(
                name=f"{label}: {concurrency} concurrent clients",
                unit="photos/s",
                runs=throughput,
                extra=extra,
                load=loadavg(),
            )
        )
        print(
            f"  {concurrency:>3} clients: {extra['p50_ms']} ms p50, {extra['p99_ms']} ms p99, "
            f"{statistics.median(throughput):.1f} photos/s (x{extra['ratio_to_inprocess']} of in-process), "
            f"{extra['failed']} failed {extra['failed_status']}; CPU a photo: service "
            f"{extra['server_cpu_ms_per_photo']} ms, load generator {extra['client_cpu_ms_per_photo']} ms"
        )
    return rows


def _median_of(runs: list[dict], key: str) -> float | None:
    values = [run[key] for run in runs if run[key] is not None]
    return round(statistics.median(values), 2) if values else None


def main(args: argparse.Namespace) -> int:
    photos = photo_bytes(split="test", count=args.photos)
    env = dict(item.split("=", 1) for item in args.server_env)
    label = args.label or "photo API" + (
        f" ({', '.join(args.server_env)})" if args.server_env else " (service defaults)"
    )
    # the server's photo model (another one with --server-env ANKANG_PHOTO_MODEL_DIR=DIR), measured in-process too
    model_dir = Path(env.get("ANKANG_PHOTO_MODEL_DIR", MODELS_DIR / "hazard_photo"))
    rows, measured = inprocess_rows(photos, args, model_dir) if args.side_by_side else ([], {})
    if args.url:
        headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
        rows += level_rows(args.url.rstrip("/"), headers, photos, args, label, measured=measured)
        save_results(args.name, rows, notes={"server": args.url})
        return 0
    with served(env=env) as server:
        idle_mb = server.resident_mb()
        rows += level_rows(
            server.base_url, server.headers, photos, args, label, server_pid=server.process.pid, measured=measured
        )
        loaded_mb = server.resident_mb()
    rows.append(
        Measurement(
            name=f"{label}: resident memory, idle / after load",
            unit="MB",
            runs=[idle_mb, loaded_mb],
            extra={"idle_mb": round(idle_mb), "loaded_mb": round(loaded_mb)},
        )
    )
    save_results(args.name, rows, notes={"server_env": env, "photos": len(photos), "seconds_per_run": args.seconds})
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(get_args_parser().parse_args()))
