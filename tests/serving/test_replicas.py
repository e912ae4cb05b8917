"""Three replicas behind HAProxy share PostgreSQL, Redis and the photo store; one is SIGKILLed under load.

32 clients of mixed traffic (photos, decisions, queue reads, throttled receipt lookups) for 30 s;
replica 0 is killed 10 s in. Afterwards every acknowledged assessment and decision is in the
database, only attempts in flight on the killed replica failed (each was retried and got through),
and the receipt-lookup limit held for the three replicas together. `benchmarks/replicas.py` runs
the same for 60 s with 1, 2 and 3 replicas.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.replica_cluster import (
    HAPROXY,
    RECEIPT_LIMIT,
    MixedLoad,
    clear_throttle,
    cluster,
    seed_cases,
    stored,
)
from tests.serving.test_review_store import postgres_schema
from tests.serving.test_shared_state import REDIS_URL
from tests.toy_models import write_toy_photo_model

pytestmark = pytest.mark.slow
CLIENTS, SECONDS, KILL_AT = 32, 30.0, 10.0


@pytest.fixture
def shared_services():
    import redis

    if not os.access(HAPROXY, os.X_OK):
        pytest.skip(f"HAProxy is not installed ({HAPROXY}): apt-get install haproxy")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 does not answer: {exc}")
    clear_throttle(REDIS_URL)
    yield from postgres_schema()


def test_a_replica_killed_under_load_loses_no_acknowledged_write(shared_services, tmp_path: Path):
    model = write_toy_photo_model(tmp_path / "models" / "hazard_photo")
    with cluster(
        tmp_path, replicas=3, database_url=shared_services, redis_url=REDIS_URL, photo_model_dir=model
    ) as replicas:
        load = MixedLoad(replicas.url, clients=CLIENTS, seconds=SECONDS, seed_cases=seed_cases(replicas.url))
        result = load.run(at=KILL_AT, action=lambda: replicas.kill(0))
        assert replicas.replicas[0].poll() is not None and all(p.poll() is None for p in replicas.replicas[1:])
    photo_ids, comments = stored(shared_services)
    assert result.acknowledged_assessments and result.acknowledged_decisions
    assert result.acknowledged_assessments <= photo_ids  # lost acknowledged writes: 0
    assert result.acknowledged_decisions <= comments
    assert result.given_up == 0  # every failed attempt went through on a retry
    assert 0 < result.failed_attempts <= CLIENTS  # only what was in flight on the killed replica
    assert result.lookups_admitted <= RECEIPT_LIMIT < result.lookups_admitted + result.lookups_refused
