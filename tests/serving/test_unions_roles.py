"""Who may do what on /v1/enterprises, /v1/unions and /v1/review-meeting: officers read, admins change
and grade, an enterprise key reads only its own enterprise, intake keys only score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from serving.api.dependencies import Backends, backends
from serving.db import create_engine
from serving.orders.store import OrderStore
from serving.review.store import ReviewStore
from serving.routes import MOUNTS, standalone_app
from serving.settings import ServingSettings
from serving.unions.api import UnionStores

KEYS = "admin:admin-key:Ada,reviewer:rev-key:Rita,reviewer:rev2-key:Rui,enterprise:ent-key:E-1,intake:in-key"


@pytest.fixture
def client(tmp_path: Path):
    settings = ServingSettings(data_dir=tmp_path, api_keys=KEYS, database_url=f"sqlite:///{tmp_path / 'r.db'}")
    review = ReviewStore.from_settings(settings)
    parts = Backends(review_store=review, order_store=OrderStore.beside(review))
    stores = UnionStores.on(review.engine)
    table = pd.DataFrame({"enterprise_id": ["E-1", "E-2"], "tier": [4, 2], "model_tier": [3, 2]})
    for tier in range(1, 6):
        table[f"p_tier_{tier}"] = 0.2
    stores.records.record_table(
        table, fingerprints=np.array(["a" * 16, "b" * 16]), model={"name": "m", "version": "v"}, source="api"
    )
    try:
        with TestClient(standalone_app(parts, settings=settings)) as test_client:
            yield test_client
    finally:  # standalone_app points every mounted app at `parts`: give the shared service app back its own
        for _name, app in MOUNTS.values():
            app.dependency_overrides.pop(backends, None)
        review.close()


def as_(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_enterprise_key_reads_only_its_own_enterprise(client):
    own = client.get("/v1/enterprises/E-1", headers=as_("ent-key"))
    assert own.status_code == 200 and own.json()["latest"]["tier"] == 4
    assert own.json().get("officers") is None  # officers are for officers
    assert client.get("/v1/enterprises/E-2", headers=as_("ent-key")).status_code == 404
    assert client.get("/v1/enterprises/E-2", headers=as_("rev-key")).json()["latest"]["tier"] == 2
    assert client.get("/v1/enterprises/E-2", headers=as_("in-key")).status_code == 403
    assert client.get("/v1/unions", headers=as_("ent-key")).status_code == 403
    assert client.get("/v1/review-meeting", headers=as_("ent-key")).status_code == 403


def test_officers_read_unions_and_only_admins_change_and_grade(client):
    body = {"union_id": "U1", "name": "工会", "union_type": "community", "district": "南山", "members": 10,
            "enterprise_ids": ["E-1", "E-2"]}  # fmt: skip
    assert client.post("/v1/unions", json=body, headers=as_("rev-key")).status_code == 403
    assert client.post("/v1/unions", json=body, headers=as_("admin-key")).status_code == 201
    assert client.post("/v1/unions", json=body, headers=as_("admin-key")).status_code == 409
    assert client.post("/v1/unions/grade", headers=as_("rev-key")).status_code == 403
    run = client.post("/v1/unions/grade", headers=as_("admin-key")).json()
    assert run["actor"].startswith("Ada [key:")
    union = client.get("/v1/unions/U1", headers=as_("rev-key")).json()
    assert union["grade"] in range(1, 6) and union["enterprise_count"] == 2
    assert client.patch("/v1/unions/U1", json={"members": 5}, headers=as_("rev-key")).status_code == 403
    patched = client.patch("/v1/unions/U1", json={"members": 5, "migrant_members": 6}, headers=as_("admin-key"))
    assert patched.status_code == 422 and patched.json()["error"]["field"] == "migrant_members"
    assert client.get("/v1/review-meeting", headers=as_("rev-key")).status_code == 200


def test_officers_assign_themselves_and_admins_assign_others(client):
    mine = client.post("/v1/enterprises/E-1/officers", json={"key_id": "me"}, headers=as_("rev-key"))
    assert mine.status_code == 201 and mine.json()["holder"] == "Rita"
    listed = client.get("/v1/enterprises?assigned_to=me", headers=as_("rev-key")).json()
    assert [(e["enterprise_id"], e["tier"], e["changed"]) for e in listed["enterprises"]] == [("E-1", 4, "new")]
    other_key = "another-officer"  # an inline or unknown key id is taken as given
    refused = client.post("/v1/enterprises/E-2/officers", json={"key_id": other_key}, headers=as_("rev-key"))
    assert refused.status_code == 403
    by_admin = client.post("/v1/enterprises/E-2/officers", json={"key_id": other_key}, headers=as_("admin-key"))
    assert by_admin.status_code == 201 and by_admin.json()["key_id"] == other_key
    assert client.get(f"/v1/enterprises?assigned_to={other_key}", headers=as_("rev-key")).status_code == 403
    assert client.get("/v1/enterprises?assigned_to=me", headers=as_("ent-key")).status_code == 403
    assert "officers" in client.get("/v1/enterprises/E-1", headers=as_("rev-key")).json()


def test_a_database_outage_is_503_with_retry_after(tmp_path: Path):
    """The unions' apps on a PostgreSQL nobody listens on (port 9): 503 and Retry-After, not a 500."""
    settings = ServingSettings(data_dir=tmp_path, api_keys=KEYS, database_url=f"sqlite:///{tmp_path / 'r.db'}")
    review = ReviewStore.from_settings(settings)
    parts = Backends(review_store=review, order_store=OrderStore.beside(review))
    dead = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=1")
    parts.__dict__["union_stores"] = UnionStores.on(dead)
    review.engine, real = dead, review.engine  # the stores follow the review store's engine
    try:
        with TestClient(standalone_app(parts, settings=settings)) as client:
            for path in ("/v1/unions", "/v1/enterprises/E-1", "/v1/review-meeting", "/unions/"):
                answer = client.get(path, headers=as_("rev-key"))
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["retry-after"] == "5"
                if path.startswith("/v1"):
                    assert answer.json()["error"]["field"] == "database"
    finally:
        for _name, app in MOUNTS.values():
            app.dependency_overrides.pop(backends, None)
        review.engine = real
        review.close()
