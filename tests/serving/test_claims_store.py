"""The claims store on SQLite and PostgreSQL: migration 0012, grouping into cases, the state machine,
merge and split, escalation through the orders' outbox, risk inputs, receipts with timelines and
feedback that reopens (at most twice, then supervision)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from runtime.errors import InputError
from serving.claims.feedback import Receipts
from serving.claims.requests import CaseFilter, CaseMoveRequest, FeedbackRequest, NewClaimRequest, parse_filter
from serving.claims.schema import claim_transitions
from serving.claims.states import Viewer
from serving.claims.store import ClaimStore
from serving.orders.schema import orders, outbox
from serving.orders.store import OrderStore
from serving.review.store import ReviewStore
from tests.serving.test_review_store import database_url  # noqa: F401  (the SQLite + PostgreSQL fixture)

T0 = dt.datetime(2026, 11, 2, 8, 0, 0)
OFFICER = Viewer(actor="officer-wang [key:k1]")
INTAKE = "intake [key:hotline]"


@pytest.fixture
def stores(database_url: str, tmp_path: Path) -> Iterator[tuple[ClaimStore, Receipts]]:  # noqa: F811
    review = ReviewStore(database_url=database_url, photo_dir=tmp_path / "photos")
    order_store = OrderStore.beside(review)
    yield ClaimStore.beside(order_store), Receipts(engine=review.engine, orders=order_store)
    review.close()


def claim(**overrides):
    body = {
        "channel": "hotline_12351",
        "enterprise_id": "E1",
        "type": "wage_arrears",
        "workers": 1,
        "amount_cny": 8000,
        "description": "三个月工资未发",
        "district": "南山区",
        "claimant": "pseudonym-1",
    }
    return NewClaimRequest.model_validate({**body, **overrides})


def move(store: ClaimStore, case_id: str, action: str, *, now: dt.datetime, **fields) -> dict:
    return store.transition(
        case_id, CaseMoveRequest.model_validate({"action": action, **fields}), viewer=OFFICER, now=now
    )


def problem(caught: pytest.ExceptionInfo[ValidationError]) -> InputError:
    """The InputError a body's reader raised (pydantic keeps it as the error's cause)."""
    return caught.value.errors()[0]["ctx"]["error"]


def test_every_problem_of_a_claim_is_named_at_once():
    with pytest.raises(ValidationError) as caught:
        NewClaimRequest.model_validate({"channel": "fax", "type": "wages", "workers": 0, "amount_cny": -1, "extra": 1})
    fields = [error["field"] for error in problem(caught).context["errors"]]
    assert fields == ["extra", "channel", "enterprise_id", "type", "workers", "amount_cny", "description"]
    assert problem(caught).status_code == 422 and problem(caught).field == "extra"


def test_feedback_and_filters_are_checked():
    with pytest.raises(ValidationError) as caught:
        FeedbackRequest.model_validate({"satisfied": 6, "resolved": "no", "comment": "x" * 501})
    assert [e["field"] for e in problem(caught).context["errors"]] == ["satisfied", "resolved", "comment"]
    with pytest.raises(InputError) as caught:
        parse_filter({"state": "lost", "channel": "fax", "limit": "0"})
    assert [e["field"] for e in caught.value.context["errors"]] == ["state", "channel", "limit"]


def test_claims_about_one_enterprise_and_type_within_30_days_become_one_case(stores):
    store, _ = stores
    first = store.file_claim(claim(), received_by=INTAKE, now=T0)
    second = store.file_claim(
        claim(channel="city_platform", workers=3), received_by=INTAKE, now=T0 + dt.timedelta(days=29)
    )
    other_type = store.file_claim(claim(type="work_injury"), received_by=INTAKE, now=T0)
    later = store.file_claim(claim(), received_by=INTAKE, now=T0 + dt.timedelta(days=60))
    assert second["case_id"] == first["case_id"] and second["grouped"]
    assert other_type["case_id"] != first["case_id"] and later["case_id"] != first["case_id"]
    case = store.case(first["case_id"], viewer=OFFICER, now=T0)
    assert (case["claimants"], case["workers"], case["amount_cny"]) == (2, 4, 16000)
    assert [c["channel"] for c in case["claims"]] == ["hotline_12351", "city_platform"]
    assert all(c["claimant"] == "pseudonym-1" for c in case["claims"])


def test_a_closed_case_is_not_joined(stores):
    store, _ = stores
    first = store.file_claim(claim(), received_by=INTAKE, now=T0)
    for action, fields in (
        ("dispatch", {"handler": "labour_inspection"}),
        ("handle", {}),
        ("close", {"outcome": "recovered"}),
    ):
        move(store, first["case_id"], action, now=T0, **fields)
    assert store.file_claim(claim(), received_by=INTAKE, now=T0)["case_id"] != first["case_id"]


def test_queue_is_most_urgent_first_and_filters(stores):
    store, _ = stores
    small = store.file_claim(claim(workers=2), received_by=INTAKE, now=T0)
    injury = store.file_claim(
        claim(type="work_injury", enterprise_id="E2"), received_by=INTAKE, now=T0 + dt.timedelta(hours=2)
    )
    mass = store.file_claim(claim(workers=12, enterprise_id="E3"), received_by=INTAKE, now=T0 + dt.timedelta(hours=1))
    page = store.cases(CaseFilter(), viewer=OFFICER, now=T0)
    assert [item["id"] for item in page["items"]] == [injury["case_id"], mass["case_id"], small["case_id"]]
    assert page["items"][1]["mass"] and page["total"] == 3
    assert store.cases(CaseFilter(channel="city_platform"), viewer=OFFICER)["total"] == 0
    assert [i["id"] for i in store.cases(CaseFilter(enterprise_id="E2"), viewer=OFFICER)["items"]] == [
        injury["case_id"]
    ]


def test_the_state_machine_appends_and_refuses_wrong_states(stores, database_url):  # noqa: F811
    store, _ = stores
    case_id = store.file_claim(claim(), received_by=INTAKE, now=T0)["case_id"]
    with pytest.raises(InputError) as caught:
        move(store, case_id, "close", now=T0, outcome="recovered")
    assert caught.value.status_code == 409 and caught.value.context["state"] == "accepted"
    move(store, case_id, "dispatch", now=T0, handler="union_legal_service")
    move(store, case_id, "dispatch", now=T0, handler="labour_inspection")  # redispatch
    move(store, case_id, "handle", now=T0, comment="约谈企业")
    closed = move(store, case_id, "close", now=T0 + dt.timedelta(days=3), outcome="recovered", recovered_cny=8000)
    assert closed["state"] == "closed" and closed["outcome"]["recovered_cny"] == 8000
    history = store.case(case_id, viewer=OFFICER)["history"]
    assert [h["action"] for h in history] == ["accept", "dispatch", "dispatch", "handle", "close"]
    with store.engine.connect() as connection:
        events = connection.execute(
            sa.select(outbox.c.event, outbox.c.payload).where(outbox.c.order_id == case_id)
        ).all()
    assert [e.event for e in events][-1] == "claim.close"
    assert all("pseudonym" not in str(e.payload) and "工资" not in str(e.payload) for e in events)


def test_enterprise_sees_only_its_cases_dispatched_to_it_without_claimants(stores):
    store, _ = stores
    case_id = store.file_claim(claim(), received_by=INTAKE, now=T0)["case_id"]
    enterprise, stranger = Viewer(actor="enterprise:E1", enterprise_id="E1"), Viewer(actor="x", enterprise_id="E9")
    assert store.cases(CaseFilter(), viewer=enterprise)["total"] == 0
    move(store, case_id, "dispatch", now=T0, handler="labour_inspection")
    assert store.cases(CaseFilter(), viewer=enterprise)["total"] == 0  # not dispatched to it
    move(store, case_id, "dispatch", now=T0, handler="enterprise_union")
    seen = store.case(case_id, viewer=enterprise)
    assert "claims" not in seen and "supervision_order_id" not in seen and seen["claimants"] == 1
    assert "pseudonym" not in str(seen)
    with pytest.raises(InputError) as caught:
        store.case(case_id, viewer=stranger)
    assert caught.value.status_code == 404
    with pytest.raises(InputError) as caught:
        store.transition(case_id, CaseMoveRequest(action="handle"), viewer=enterprise)
    assert caught.value.status_code == 403


def test_merge_and_split_move_claims_and_recount(stores):
    store, _ = stores
    a = store.file_claim(claim(workers=2), received_by=INTAKE, now=T0)
    b = store.file_claim(claim(type="dismissal", workers=3), received_by=INTAKE, now=T0)
    merged = store.merge(b["case_id"], a["case_id"], viewer=OFFICER, now=T0)
    assert (merged["claimants"], merged["workers"]) == (2, 5)
    assert store.case(b["case_id"], viewer=OFFICER)["state"] == "closed"
    result = store.split(a["case_id"], [b["claim_id"]], viewer=OFFICER, now=T0)
    assert (result["case"]["workers"], result["new_case"]["workers"]) == (2, 3)
    with pytest.raises(InputError):
        store.split(a["case_id"], [a["claim_id"]], viewer=OFFICER, now=T0)  # nothing would stay


def test_overdue_cases_escalate_through_the_outbox(stores):
    store, _ = stores
    case_id = store.file_claim(claim(), received_by=INTAKE, now=T0)["case_id"]
    due = dt.datetime.fromisoformat(store.case(case_id, viewer=OFFICER)["due_at"].rstrip("Z"))
    assert store.escalate_overdue(now=due - dt.timedelta(hours=1)) == []
    assert [e["level"]["level"] for e in store.escalate_overdue(now=due + dt.timedelta(hours=73))] == [2]
    assert store.escalate_overdue(now=due + dt.timedelta(hours=74)) == []
    with store.engine.connect() as connection:
        assert (
            connection.execute(
                sa.select(sa.func.count()).where(outbox.c.order_id == case_id, outbox.c.event == "claim.escalate")
            ).scalar_one()
            == 1
        )


def test_risk_inputs_come_from_the_last_12_months(stores):
    store, _ = stores
    for index in range(12):
        store.file_claim(claim(amount_cny=1000), received_by=INTAKE, now=T0 + dt.timedelta(hours=index))
    store.file_claim(claim(type="work_injury"), received_by=INTAKE, now=T0)
    store.file_claim(claim(), received_by=INTAKE, now=T0 - dt.timedelta(days=400))
    inputs = store.risk_inputs(["E1", "E404"], now=T0 + dt.timedelta(days=1))
    assert inputs == {
        "E1": {
            "complaints_12m": 13,
            "wage_arrears_cases_12m": 1,
            "wage_arrears_workers_12m": 12,
            "wage_arrears_amount_12m": 12000.0,
            "work_injury_cases_12m": 1,
            "collective_petition_12m": True,
        }
    }


def close_case(store: ClaimStore, case_id: str, now: dt.datetime) -> None:
    for action, fields in (
        ("dispatch", {"handler": "labour_inspection"}),
        ("handle", {}),
        ("close", {"outcome": "recovered"}),
    ):
        if store.case(case_id, viewer=OFFICER)["state"] != "closed":
            move(store, case_id, action, now=now, **fields)


def test_receipts_show_a_timeline_and_take_feedback_once_per_closed_stage(stores):
    store, receipts = stores
    filed = store.file_claim(claim(), received_by=INTAKE, now=T0)
    status = receipts.status(filed["receipt"])
    assert status["stage"] == "accepted" and [e["event"] for e in status["timeline"]] == ["accept"]
    assert "E1" not in str(status) and "pseudonym" not in str(status) and "officer" not in str(status)
    with pytest.raises(InputError) as caught:
        receipts.give_feedback(filed["receipt"], FeedbackRequest.model_validate({"satisfied": 5, "resolved": True}))
    assert caught.value.status_code == 409
    close_case(store, filed["case_id"], T0)
    status = receipts.status(filed["receipt"])
    assert [e["event"] for e in status["timeline"]] == ["accept", "dispatch", "handle", "close"]
    assert status["timeline"][1]["handler"]["id"] == "labour_inspection" and status["feedback"]["open"]
    assert (
        receipts.give_feedback(filed["receipt"], FeedbackRequest.model_validate({"satisfied": 5, "resolved": True}))[
            "action"
        ]
        is None
    )
    with pytest.raises(InputError) as caught:
        receipts.give_feedback(filed["receipt"], FeedbackRequest.model_validate({"satisfied": 4, "resolved": True}))
    assert caught.value.status_code == 409
    with pytest.raises(InputError) as caught:
        receipts.status("AAAA-AAAA-AAAA-AAAA-AAAA-AAAA")
    assert caught.value.status_code == 404


def test_not_resolved_reopens_twice_then_opens_supervision(stores):
    store, receipts = stores
    filed = store.file_claim(claim(), received_by=INTAKE, now=T0)
    actions = []
    for _ in range(3):
        close_case(store, filed["case_id"], T0)
        answer = receipts.give_feedback(
            filed["receipt"], FeedbackRequest.model_validate({"satisfied": 1, "resolved": False, "comment": "没发"})
        )
        actions.append(answer["action"])
    assert actions == ["reopened", "reopened", "supervision"]
    case = store.case(filed["case_id"], viewer=OFFICER)
    assert case["reopen_count"] == 2 and case["state"] == "closed"
    with store.engine.connect() as connection:
        supervision = connection.execute(sa.select(orders).where(orders.c.id == case["supervision_order_id"])).one()
        actions = list(connection.execute(sa.select(claim_transitions.c.action)).scalars())
    assert supervision.kind == "supervision" and supervision.enterprise_id == "E1"
    assert actions.count("reopen") == 2 and actions.count("supervise") == 1


def test_feedback_comments_are_never_in_the_workers_answer(stores):
    store, receipts = stores
    filed = store.file_claim(claim().model_copy(update={"claimant": None}), received_by=INTAKE, now=T0)
    close_case(store, filed["case_id"], T0)
    receipts.give_feedback(
        filed["receipt"], FeedbackRequest.model_validate({"satisfied": 2, "resolved": True, "comment": "态度差"})
    )
    assert "态度差" not in str(receipts.status(filed["receipt"]))
    assert store.case(filed["case_id"], viewer=OFFICER)["feedback"][0]["comment"] == "态度差"


def test_figures_wait_a_moment_for_a_recomputation_then_answer_the_previous_ones(stores, monkeypatch):
    import threading

    from serving.claims import figures

    store, _ = stores
    store.file_claim(claim(), received_by=INTAKE, now=T0)
    cache = figures.CachedFigures(wait_seconds=0.05)
    first, stale = cache.get(store.engine, now=T0)
    assert (first["claims"], stale) == (1, False)
    release = threading.Event()
    real_summary = figures.summary

    def slow_summary(*args, **kwargs):
        release.wait(10)
        return real_summary(*args, **kwargs)

    monkeypatch.setattr(figures, "summary", slow_summary)
    store.file_claim(claim(), received_by=INTAKE, now=T0 + dt.timedelta(seconds=1))
    previous, stale = cache.get(store.engine, now=T0)
    assert (previous["claims"], stale) == (1, True)  # answered within the wait, from the last figures
    release.set()
    cache.refresh(store.engine)
    assert cache.get(store.engine, now=T0) == (cache.get(store.engine, now=T0)[0], False)
    assert cache.get(store.engine, now=T0)[0]["claims"] == 2


def test_a_claims_enterprise_id_is_normalised_like_an_orders():
    """A zero-width twin of E100 is E100 (one case, one risk profile), and control characters are refused."""
    assert claim(enterprise_id="E\u200b100").enterprise_id == "E100"
    assert claim(enterprise_id="Ｅ100").enterprise_id == "E100"  # NFKC: a full-width letter
    with pytest.raises(ValidationError) as refused:
        claim(enterprise_id="E\x07100")
    assert problem(refused).field == "enterprise_id"
