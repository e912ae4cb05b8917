"""Issue 21, item 4: an intake is atomic: the case, its flags and its receipt commit together.

Strategy (docs/security.md): the photo file is written first under a temporary name and renamed
(content-addressed), then one transaction writes the case, flags and receipt; when that
transaction fails, the file this request wrote is removed again unless a case or an order refers
to it. A database fault during uploads left a case with no receipt and photo files with no case.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from serving.orders import receipts
from serving.review.store import ReviewStore
from tests.serving.conftest import encode_image
from tests.serving.hardening_support import service_instance, stores_on
from tests.serving.test_review_store import postgres_schema


class DatabaseFault(sa.exc.OperationalError):
    def __init__(self):
        super().__init__("INSERT", {}, Exception("server closed the connection unexpectedly"))


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request, api, tmp_path: Path) -> Iterator:
    urls = [f"sqlite:///{tmp_path / 'intake.db'}"] if request.param == "sqlite" else postgres_schema()
    for url in urls:
        with stores_on(api, url, tmp_path / "photos") as answering:
            yield answering


def stored() -> dict[str, int]:
    store = service_instance().backends.review_store
    with store.engine.connect() as connection:
        counts = {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("review_cases", "review_case_flags", "report_receipts")
        }
    counts["photo files"] = sum(1 for path in store.photos.root.rglob("*") if path.is_file())
    return counts


def upload(client, colour=(250, 0, 0)):
    return client.post("/v1/photos/assess", files={"photo": ("a.jpg", encode_image(colour), "image/jpeg")})


def test_a_fault_writing_the_receipt_leaves_no_case_and_no_photo(client, monkeypatch):
    assert upload(client, (1, 2, 3)).status_code == 200
    before = stored()

    def failing(connection, photo_id):
        raise DatabaseFault()

    monkeypatch.setattr(receipts, "record_receipt", failing)
    response = upload(client)
    assert response.status_code >= 500
    assert stored() == before


def test_a_fault_writing_the_case_leaves_no_photo(client, monkeypatch):
    before = stored()

    def failing(*args, **kwargs):
        raise DatabaseFault()

    monkeypatch.setattr(ReviewStore, "_group_for", failing)
    assert upload(client).status_code >= 500
    assert stored() == before


def test_a_photo_another_case_holds_is_kept_when_a_second_intake_of_it_fails(client, monkeypatch):
    assert upload(client).status_code == 200
    before = stored()
    monkeypatch.setattr(receipts, "record_receipt", lambda connection, photo_id: (_ for _ in ()).throw(DatabaseFault()))
    assert upload(client).status_code >= 500  # the same bytes: the file is the first case's
    assert stored() == before and before["photo files"] == 1


def test_every_answered_intake_has_its_case_and_receipt(client):
    body = upload(client).json()
    assert client.get(f"/v1/reports/{body['receipt']}").json()["stage"] == "received"
    assert client.get(f"/v1/review/{body['photo_id']}").status_code == 200
    assert stored()["report_receipts"] == stored()["review_cases"] == 1
