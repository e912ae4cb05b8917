"""One client posting site photos one after another through the whole service in-process (the
BentoML ASGI app with every middleware, auth off), to profile a photo request end to end:

    py-spy record -o benchmarks/results/photo_request_flame.svg --rate 200 -- \
        .venv/bin/python benchmarks/photo_request_profile.py 200
    .venv/bin/python benchmarks/photo_request_profile.py 200 --no-model   # what is not the model

Prints the p50 of one request (in-process, no network) and the CPU time per request of this
process (every thread: the service, onnxruntime's threads and the httpx client); the flame graph
shows where it goes. `--no-model` answers every batch with one cached output of the model, so the
CPU time per request is everything but the model (decoding, resizing, the review store, the
middleware, BentoML, the client): unlike the wall time it hardly moves when other work shares
the cores, so it compares changes on a loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(ANKANG_AUTH="off", ANKANG_DATA_DIR=tempfile.mkdtemp(), ANKANG_RELOAD_POLL_SECONDS="600")

import httpx  # noqa: E402

from serving.photo import PhotoModel  # noqa: E402
from serving.service import Ankang  # noqa: E402

PHOTOS = ROOT / "datasets" / "site-hazard-photos" / "images"
WARM_UP = 10


def without_the_model() -> None:
    """Every batch gets one cached output of the real model (computed once, from the first photo)."""
    real, cached = PhotoModel.run_batch, []

    def run_batch(self: PhotoModel, images):
        if not cached:
            cached.append(real(self, images[:1])[0])
        return cached * len(images)

    PhotoModel.run_batch = run_batch


async def post_photos(count: int) -> tuple[list[float], float]:
    """Each request's wall time (ms, after the warm-up) and the CPU seconds of all of them."""
    app = Ankang.to_asgi()
    data = [Path(path).read_bytes() for path in sorted(glob.glob(f"{PHOTOS}/**/*.jpg", recursive=True))[:50]]
    times, cpu = [], 0.0
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ankang") as client:
            for index in range(count + WARM_UP):
                if index == WARM_UP:
                    cpu = time.process_time()
                start = time.perf_counter()
                files = {"photo": ("p.jpg", data[index % len(data)], "image/jpeg")}
                response = await client.post("/v1/photos/assess", files=files)
                response.raise_for_status()
                if index >= WARM_UP:
                    times.append((time.perf_counter() - start) * 1000)
            cpu = time.process_time() - cpu
    return sorted(times), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int, nargs="?", default=200, help="photos timed (after 10 warm-up ones)")
    parser.add_argument("--no-model", action="store_true", help="answer every batch with a cached model output")
    args = parser.parse_args()
    if args.no_model:
        without_the_model()
    times, cpu = asyncio.run(post_photos(args.count))
    what = "without the model" if args.no_model else "in-process"
    print(
        f"one client, {args.count} photos {what}: p50 {times[len(times) // 2]:.1f} ms, "
        f"CPU {1000 * cpu / len(times):.2f} ms a request, load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
