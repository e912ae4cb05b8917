"""State that replicas share: throttling windows in Redis, photos in an object store (moto's S3 server)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.auth import FailureLimiter
from serving.orders.receipts import RateLimiter
from serving.review.photos import PhotoStore
from serving.windows import MemoryWindows, RedisWindows, windows
from tests.serving.test_review_store import photo

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_windows() -> Iterator[RedisWindows]:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 does not answer: {exc}")
    prefix = f"ankang-test:{uuid.uuid4().hex[:8]}"
    shared = RedisWindows(REDIS_URL, prefix=prefix, window=60.0)
    yield shared
    for name in shared.client.scan_iter(f"{prefix}:*"):
        shared.client.delete(name)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_window_admits_the_limit_then_refuses_until_events_age_out(kind, request):
    counts = MemoryWindows(window=60.0) if kind == "memory" else request.getfixturevalue("redis_windows")
    assert [counts.record("a", limit=2, now=t) for t in (100.0, 101.0, 102.0)] == [True, True, False]
    assert counts.count("a", now=102.0) == 2 and counts.count("b", now=102.0) == 0
    assert counts.record("a", limit=2, now=160.5)  # the event at 100 left the window


def test_replicas_sharing_redis_admit_the_limit_in_total(redis_windows):
    """Three limiters (three replicas) racing 60 lookups through one Redis: exactly the limit passes."""
    replicas = [RateLimiter(limit=25, redis_url=REDIS_URL, prefix=redis_windows.prefix) for _ in range(3)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda index: replicas[index % 3].allow("10.0.0.9"), range(60)))
    assert sum(answers) == 25


def test_failed_sign_ins_counted_on_one_replica_block_another(redis_windows):
    first, second = (FailureLimiter(limit=3, redis_url=REDIS_URL, prefix=redis_windows.prefix) for _ in range(2))
    for _ in range(3):
        first.fail("10.0.0.1")
    assert second.blocked("10.0.0.1") and not second.blocked("10.0.0.2")


def test_no_redis_url_counts_in_memory():
    assert isinstance(windows(None, prefix="p", window=1.0), MemoryWindows)
    assert isinstance(RateLimiter(redis_url=REDIS_URL).windows, RedisWindows)
    assert RateLimiter().windows.window == 60.0 and FailureLimiter().windows.window == 600.0


def test_memory_windows_forget_the_oldest_clients_beyond_the_bound():
    counts = MemoryWindows(window=60.0, max_keys=100)
    for index in range(1000):
        counts.record(f"2001:db8::{index:x}", now=100.0)
    assert len(counts._events) == 100 and counts.count("2001:db8::3e7", now=100.0) == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server over HTTP (no S3 service is installed here)."""
    pytest.importorskip("moto.server", reason="moto[server] is in the dev extra: make test-deps")
    pytest.importorskip("s3fs", reason="s3fs is in the s3 and dev extras: make test-deps")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def s3_store(s3_endpoint, monkeypatch) -> PhotoStore:
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"photos-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return PhotoStore(f"s3://{bucket}/ankang", keep_gps=False)


def test_photos_go_to_the_object_store_content_addressed(s3_store):
    import boto3

    data, _ = photo((40, 80, 120), pattern=3, gps=True)
    digest = s3_store.put(data)
    assert s3_store.put(data) == digest  # stored once
    bucket = s3_store.base.split("/")[0]
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == [f"ankang/{digest[:2]}/{digest}.jpg"]
    stored = s3_store.read(digest)
    assert stored[:2] == b"\xff\xd8" and s3_store.open_image(digest).size == (96, 64)
    thumb = s3_store.derived(digest, "thumb")
    assert thumb[:2] == b"\xff\xd8" and s3_store.derived(digest, "thumb") == thumb
    with pytest.raises(ValueError, match="is not a local folder; use read"):
        s3_store.path(digest)
    with pytest.raises(FileNotFoundError, match=f"photo {'0' * 64} is not in the photo store at s3://"):
        s3_store.read("0" * 64)
