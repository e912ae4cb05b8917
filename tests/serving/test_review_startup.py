"""Start-up on a fresh review store: the API workers migrate it once, and nothing logs an error."""

from __future__ import annotations

import multiprocessing
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from serving.db import create_engine, migrate
from tests.server import clean_env, served
from tests.serving.test_review_store import HEAD, postgres_schema
from tests.toy_models import write_toy_photo_model

ERROR_LINE = re.compile(r"\[ERROR\]|Traceback|\"level\": \"error\"|startup failed|UniqueViolation|already exists")


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'review' / 'review.db'}"
    else:
        yield from postgres_schema()


@pytest.mark.slow
def test_a_fresh_start_with_two_workers_logs_no_error(fresh_database_url, tmp_path):
    env = clean_env(
        ANKANG_DATA_DIR=str(tmp_path / "var"),
        ANKANG_DATABASE_URL=fresh_database_url,
        ANKANG_API_WORKERS="2",
        ANKANG_API_KEYS="reviewer:startup-reviewer-key-0123:王安全",
        ANKANG_PHOTO_MODEL_DIR=str(write_toy_photo_model(tmp_path / "models" / "hazard_photo")),
    )
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log, served(env, log=log):
        deadline = time.monotonic() + 90  # ready means one worker answers; wait for the second too
        while (
            log_path.read_text(errors="replace").count("Service ankang initialized") < 2 and time.monotonic() < deadline
        ):
            time.sleep(0.2)
    text = log_path.read_text(errors="replace")
    assert text.count("Service ankang initialized") == 2, text[-3000:]
    assert not [line for line in text.splitlines() if ERROR_LINE.search(line)], text[-3000:]


def _migrate_after(barrier, url: str) -> None:
    barrier.wait()
    engine = create_engine(url)
    migrate(engine)
    engine.dispose()


def test_workers_migrating_a_fresh_store_at_the_same_moment_all_succeed(fresh_database_url, tmp_path):
    """Four processes released together (a harsher race than two workers): each reaches head, none fails."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_migrate_after, args=(barrier, fresh_database_url)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    engine = sa.create_engine(fresh_database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM review_alembic_version")).scalars().all() == [HEAD]
    engine.dispose()
