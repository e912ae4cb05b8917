"""One client posting site photos one after another through the whole service in-process (the
BentoML ASGI app with every middleware, auth off), to profile a photo request end to end:

    py-spy record -o benchmarks/results/photo_request_flame.svg --rate 200 -- \
        .venv/bin/python benchmarks/photo_request_profile.py 200

Prints the p50 of one request (in-process, no network); the flame graph shows where it goes.
"""

from __future__ import annotations

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

from serving.service import Ankang  # noqa: E402

PHOTOS = ROOT / "datasets" / "site-hazard-photos" / "images"


async def post_photos(count: int) -> list[float]:
    app = Ankang.to_asgi()
    data = [Path(path).read_bytes() for path in sorted(glob.glob(f"{PHOTOS}/**/*.jpg", recursive=True))[:50]]
    times = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ankang") as client:
            for index in range(count + 10):  # the first 10 warm up
                start = time.perf_counter()
                files = {"photo": ("p.jpg", data[index % len(data)], "image/jpeg")}
                response = await client.post("/v1/photos/assess", files=files)
                response.raise_for_status()
                if index >= 10:
                    times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    times = asyncio.run(post_photos(count))
    print(f"one client, {count} photos in-process: p50 {times[len(times) // 2]:.1f} ms")
