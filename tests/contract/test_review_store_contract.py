"""`ankang drift photo` reads the service's review store without importing serving: same store, same columns."""

from __future__ import annotations

import pytest

from serving.settings import ServingSettings
from training.lifecycle.drift_commands import read_cases, service_database_url


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"ANKANG_DATA_DIR": "/srv/ankang"},
        {"ANKANG_DATA_DIR": "  "},
        {"ANKANG_DATABASE_URL": "postgresql://db/ankang", "ANKANG_DATA_DIR": "/srv"},
    ],
)
def test_drift_finds_the_store_the_service_writes_to(env):
    assert service_database_url(env) == ServingSettings.from_env(env).resolved_database_url


def test_drift_reads_the_columns_of_the_service_store(tmp_path):
    from serving.review.store import ReviewStore

    url = f"sqlite:///{tmp_path / 'review.db'}"
    ReviewStore(database_url=url, photo_dir=tmp_path / "photos").close()  # migrates like the service
    frame, read_from = read_cases(url)
    assert list(frame.columns) == ["created_at", "triage", "flagged", "model_version"] and read_from == url
