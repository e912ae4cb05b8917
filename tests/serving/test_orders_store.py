"""The order store on SQLite and PostgreSQL: the state machine, append-only history, outbox rows in the
same transaction, escalation after the policy's delays, receipts, photo hazards for risk, supervision."""

from __future__ import annotations

import datetime as dt
import functools
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from PIL import Image

from serving.db import MIGRATIONS_DIR, migrate, utcnow
from serving.errors import InputError
from serving.orders import dashboard, receipts
from serving.orders.policy import RectificationPolicy
from serving.orders.requests import (
    AmendmentRequest,
    MoveRequest,
    NewOrderRequest,
    NewSupervisionRequest,
    OrderFilter,
)
from serving.orders.schema import outbox, transitions
from serving.orders.states import Viewer
from serving.orders.store import OrderStore, Proof
from serving.photo import build_assessment
from serving.review.decisions import DecisionRequest, Reviewer
from serving.review.store import ReviewStore
from tests.serving.test_review_store import database_url  # noqa: F401  (the SQLite + PostgreSQL fixture)

T0 = dt.datetime(2026, 11, 2, 8, 0, 0)  # a Monday
OFFICER = Viewer(actor="officer-wang")


@pytest.fixture
def stores(database_url: str, tmp_path: Path) -> Iterator[tuple[ReviewStore, OrderStore]]:  # noqa: F811
    review = ReviewStore(database_url=database_url, photo_dir=tmp_path / "photos")
    yield review, OrderStore.beside(review)
    review.close()


def confirmed_case(
    review: ReviewStore,
    flags: dict[str, float],
    *,
    site: str = "site-1",
    decide: str = "confirm",
    hazards: tuple[str, ...] = (),
) -> str:
    image = Image.new("RGB", (48, 32), (200, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    scores = {label: flags.get(label, 0.05) for label in ("missing_helmet", "fire_smoke", "wet_floor")}
    photo_id = uuid.uuid4().hex
    assessment = build_assessment(scores, dict.fromkeys(scores, 0.5), model_name="hazard_photo", model_version="t")
    review.record_assessment(
        photo_id=photo_id,
        data=buffer.getvalue(),
        image=image,
        metadata={"site_id": site},
        assessment=assessment,
        created_at=T0,
    )
    if decide:
        review.decide(
            photo_id,
            DecisionRequest(decision=decide, hazards=list(hazards) or None),
            reviewer=Reviewer("env-1", "officer-wang"),
        )
    return photo_id


def new_order(photo_id: str, enterprise: str = "E1", **overrides) -> NewOrderRequest:
    fields = {
        "photo_id": photo_id,
        "enterprise_id": enterprise,
        "site_id": None,
        "district": "南山区",
        "assignee": "李经理",
        "measures": "整改",
        "hazard": None,
        "due_at": None,
    }
    return NewOrderRequest(**{**fields, **overrides})


def proof(probability: float) -> Proof:
    return Proof(
        sha256="0" * 64,
        assessment={
            "model": {"name": "hazard_photo", "version": "t"},
            "flagged": [],
            "hazards": {"fire_smoke": probability, "wet_floor": probability},
        },
    )


def walk(orders: OrderStore, order_id: str, *actions: str, viewer: Viewer = OFFICER, at: dt.datetime = T0) -> dict:
    result = {}
    for action in actions:
        result = orders.transition(
            order_id,
            MoveRequest(action=action, comment=f"{action} note"),
            viewer=viewer,
            now=at,
            proof=proof(0.04) if action == "submit" else None,
        )
    return result


def test_migrations_chain_onto_the_review_schema_and_downgrade(stores):
    review, _ = stores
    tables = set(sa.inspect(review.engine).get_table_names())
    assert {"rectification_orders", "order_transitions", "order_outbox", "report_receipts"} <= tables
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with review.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")  # back to before the orders
    assert "rectification_orders" not in set(sa.inspect(review.engine).get_table_names())
    migrate(review.engine)


def test_default_due_time_follows_the_most_severe_hazard(stores):
    review, orders = stores
    major = orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER, now=T0)
    general = orders.create_order(new_order(confirmed_case(review, {"wet_floor": 0.8})), viewer=OFFICER, now=T0)
    assert (major["severity"], major["due_at"]) == ("疑似重大", "2026-11-03T08:00:00Z")  # 24 h
    assert (general["severity"], general["due_at"]) == ("一般", "2026-11-09T08:00:00Z")  # 7 days
    soon = T0 + dt.timedelta(hours=3)
    given = orders.create_order(
        new_order(confirmed_case(review, {"wet_floor": 0.8}), due_at=soon), viewer=OFFICER, now=T0
    )
    assert given["due_at"] == "2026-11-02T11:00:00Z"


def test_orders_need_a_confirmed_or_corrected_case_and_one_order_per_case(stores):
    review, orders = stores
    with pytest.raises(InputError, match="the case is `open`; an order needs a case an officer confirmed") as info:
        orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9}, decide="")), viewer=OFFICER)
    assert info.value.status_code == 409
    corrected = confirmed_case(review, {"fire_smoke": 0.9}, decide="correct", hazards=("wet_floor",))
    order = orders.create_order(new_order(corrected), viewer=OFFICER)
    assert order["comparison"]["hazard"] == "wet_floor" and order["severity"] == "一般"
    with pytest.raises(InputError, match="this case already has a rectification order"):
        orders.create_order(new_order(corrected), viewer=OFFICER)
    with pytest.raises(InputError, match=r"'fire_smoke' is not among the case's confirmed hazards \['wet_floor'\]"):
        orders.create_order(
            new_order(
                confirmed_case(review, {"fire_smoke": 0.9}, decide="correct", hazards=("wet_floor",)),
                hazard="fire_smoke",
            ),
            viewer=OFFICER,
        )
    with pytest.raises(InputError, match="only union officers issue rectification orders"):
        orders.create_order(new_order(corrected), viewer=Viewer("e", enterprise_id="E1"))


def test_full_walk_appends_every_transition_and_an_outbox_row_each(stores):
    review, orders = stores
    order = orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.93})), viewer=OFFICER, now=T0)
    enterprise = Viewer(actor="enterprise:E1", enterprise_id="E1")
    walk(orders, order["id"], "start", "submit", viewer=enterprise)
    walk(orders, order["id"], "reject")
    walk(orders, order["id"], "submit", viewer=enterprise)
    closed = walk(orders, order["id"], "verify", "close", at=T0 + dt.timedelta(days=2))
    assert closed["state"] == "closed" and closed["rectified_at"] == closed["closed_at"] == "2026-11-04T08:00:00Z"
    history = orders.order(order["id"], viewer=OFFICER)["history"]
    assert [(e["action"], e["from"], e["to"]) for e in history] == [
        ("create", None, "open"),
        ("start", "open", "in_progress"),
        ("submit", "in_progress", "submitted"),
        ("reject", "submitted", "in_progress"),
        ("submit", "in_progress", "submitted"),
        ("verify", "submitted", "verified"),
        ("close", "verified", "closed"),
    ]
    assert [e["actor"] for e in history][1:4] == ["enterprise:E1", "enterprise:E1", "officer-wang"]
    assert history[2]["details"]["probability_before"] == 0.93 and history[2]["details"]["probability_after"] == 0.04
    with review.engine.connect() as connection:
        events = connection.execute(sa.select(outbox.c.event).order_by(outbox.c.id)).scalars().all()
    assert events == [f"order.{e['action']}" for e in history]


@pytest.mark.parametrize(
    ("actions", "action", "message"),
    [
        ((), "verify", "the order is `open`; `verify` needs state `submitted` (from `open` you can start)"),
        (
            ("start",),
            "start",
            "the order is `in_progress`; `start` needs state `open` (from `in_progress` you can submit)",
        ),
        (
            ("start", "submit", "verify", "close"),
            "reject",
            "the order is `closed`; `reject` needs state `submitted` (`closed` is final)",
        ),
    ],
)
def test_invalid_transitions_are_409_naming_the_state_and_change_nothing(stores, actions, action, message):
    review, orders = stores
    order = orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER)
    walk(orders, order["id"], *actions)
    before = orders.order(order["id"], viewer=OFFICER)
    with pytest.raises(InputError, match=f"^action: {message.replace('(', '[(]').replace(')', '[)]')}$") as info:
        walk(orders, order["id"], action)
    assert info.value.status_code == 409 and info.value.context == {"state": before["state"]}
    assert orders.order(order["id"], viewer=OFFICER) == before


def test_rectification_submit_needs_a_proof_photo_and_enterprises_cannot_verify(stores):
    review, orders = stores
    order = orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER)
    walk(orders, order["id"], "start")
    with pytest.raises(InputError, match="a rectification order is submitted with a proof photo: POST it as `photo`"):
        orders.transition(order["id"], MoveRequest(action="submit"), viewer=OFFICER)
    walk(orders, order["id"], "submit")
    with pytest.raises(InputError, match="an enterprise key may only start or submit its orders; `verify` is for"):
        orders.transition(order["id"], MoveRequest(action="verify"), viewer=Viewer("e", enterprise_id="E1"))
    with pytest.raises(InputError, match="no order with id") as info:  # someone else's order does not exist
        orders.transition(order["id"], MoveRequest(action="start"), viewer=Viewer("e", enterprise_id="E2"))
    assert info.value.status_code == 404


def test_overdue_orders_climb_the_escalation_levels_after_the_configured_delays(stores):
    review, orders = stores
    order = orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER, now=T0)
    due = T0 + dt.timedelta(hours=24)
    assert orders.escalate_overdue(now=due) == []
    assert [e["level"]["id"] for e in orders.escalate_overdue(now=due + dt.timedelta(minutes=1))] == ["site"]
    assert orders.escalate_overdue(now=due + dt.timedelta(hours=47)) == []
    assert [e["level"]["id"] for e in orders.escalate_overdue(now=due + dt.timedelta(hours=48))] == ["enterprise_union"]
    late = orders.escalate_overdue(now=due + dt.timedelta(days=30))
    assert [e["level"]["id"] for e in late] == ["district_federation"]
    assert orders.escalate_overdue(now=due + dt.timedelta(days=60)) == []
    listed = orders.orders(OrderFilter(overdue=True), viewer=OFFICER, now=due + dt.timedelta(days=30))
    assert [(item["id"], item["escalation_level"], item["overdue"]) for item in listed["items"]] == [
        (order["id"], 3, True)
    ]
    history = orders.order(order["id"], viewer=OFFICER)["history"]
    assert [e["details"]["level"]["level"] for e in history if e["action"] == "escalate"] == [1, 2, 3]


def test_escalation_delays_are_data(tmp_path, stores):
    review, _ = stores
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        """due_hours_by_severity: {疑似重大: 1, 一般: 2}
supervision_min_tier: 4
supervision_due_hours: 10
escalation:
  - {level: 1, id: site, name_zh: 现场, name_en: site, after_overdue_hours: 5}
""",
        encoding="utf-8",
    )
    orders = OrderStore.beside(review, policy=RectificationPolicy.load(policy_file))
    order = orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER, now=T0)
    assert order["due_at"] == "2026-11-02T09:00:00Z"
    assert orders.escalate_overdue(now=T0 + dt.timedelta(hours=5, minutes=59)) == []
    assert len(orders.escalate_overdue(now=T0 + dt.timedelta(hours=6))) == 1
    policy_file.write_text(policy_file.read_text().replace("level: 1,", "level: 2,"), encoding="utf-8")
    with pytest.raises(ValueError, match="escalation levels must be numbered 1, 2, 3, ... in order"):
        RectificationPolicy.load(policy_file)


def test_receipts_show_the_stage_only_and_unknown_codes_are_404(stores):
    review, orders = stores
    photo_id = confirmed_case(review, {"fire_smoke": 0.9}, decide="")
    code = orders.issue_receipt(photo_id)
    assert receipts.report_status(review.engine, code)["stage"] == "received"
    review.decide(photo_id, DecisionRequest(decision="dismiss"), reviewer=Reviewer("env-1", "x"))
    status = receipts.report_status(review.engine, code.lower().replace("-", " "))
    assert status["stage"] == "no_hazard_found" and status["reported_on"] == "2026-11-02"
    with pytest.raises(InputError, match="no report has this receipt code") as info:
        receipts.report_status(review.engine, receipts.new_code())
    assert info.value.status_code == 404
    with pytest.raises(InputError, match="a receipt code is 24 letters and digits"):
        receipts.report_status(review.engine, "../../etc/passwd")
    with review.engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT code_sha256 FROM report_receipts")).scalars().all()
    assert code.replace("-", "") not in "".join(stored)  # only the hash is kept


def test_a_receipt_of_an_unflagged_photo_does_not_wait_for_a_review_forever(stores):
    """Issue 23 item 6: a photo triaged `clear` said "waiting for review" forever."""
    review, orders = stores
    photo_id = confirmed_case(review, {}, decide="")  # nothing at or above a threshold: triage clear
    status = receipts.report_status(review.engine, orders.issue_receipt(photo_id))
    assert status["stage"] == "no_hazard_flagged"
    assert status["message_en"] == "received; the automatic check found no hazard (an officer may still look at it)"
    assert status["message_zh"].startswith("已收到，自动筛查未发现隐患")


def test_a_review_rectified_decision_dates_the_receipts_rectification(stores):
    """Issue 23 item 6: a review `rectified` decision left `rectified_on: null`."""
    review, orders = stores
    photo_id = confirmed_case(review, {"wet_floor": 0.9})
    code = orders.issue_receipt(photo_id)
    review.decide(photo_id, DecisionRequest(decision="rectified"), reviewer=Reviewer("env-1", "x"))
    status = receipts.report_status(review.engine, code)
    assert status["stage"] == "rectified" and status["rectified_on"] == utcnow().date().isoformat()
    assert [h["type"] for h in status["hazards"]] == ["wet_floor"]


def test_rate_limiter_allows_a_window_then_refuses():
    limiter = receipts.RateLimiter(limit=2, window=60)
    assert [limiter.allow("a", now=t) for t in (0, 1, 2)] == [True, True, False]
    assert limiter.allow("b", now=2) and limiter.allow("a", now=61)


def test_open_photo_hazards_count_unrectified_orders_per_known_enterprise(stores):
    review, orders = stores
    fire = orders.create_order(
        new_order(confirmed_case(review, {"fire_smoke": 0.9, "wet_floor": 0.7}), "E7"), viewer=OFFICER
    )
    orders.create_order(new_order(confirmed_case(review, {"wet_floor": 0.7}), "E7"), viewer=OFFICER)
    assert orders.open_photo_hazards(["E7", "E8"]) == {"E7": (3, 1)}
    walk(orders, fire["id"], "start", "submit", "verify")
    assert orders.open_photo_hazards(["E7"]) == {"E7": (1, 0)}


def test_high_tiers_open_one_supervision_case_each_on_the_same_state_machine(stores):
    _, orders = stores
    results = [
        {"enterprise_id": "S1", "tier": 4},
        {"enterprise_id": "S2", "tier": 3},
        {"enterprise_id": "S3", "tier": 5},
    ]
    opened = orders.supervise_high_tiers(results, now=T0)
    assert sorted(opened) == ["S1", "S3"] and all(case["opened"] for case in opened.values())
    again = orders.supervise_high_tiers(results, now=T0)
    assert {key: case["order_id"] for key, case in again.items()} == {k: c["order_id"] for k, c in opened.items()}
    assert not any(case["opened"] for case in again.values())
    case_id = opened["S1"]["order_id"]
    amendment = AmendmentRequest(officer="张主席", notes="约谈企业负责人", comment="指定负责人")
    amended = orders.amend(case_id, amendment.changes, comment=amendment.comment, viewer=OFFICER)
    assert amended["officer"] == "张主席" and amended["due_at"] == "2026-11-16T08:00:00Z"
    orders.transition(case_id, MoveRequest(action="start"), viewer=OFFICER)
    orders.transition(case_id, MoveRequest(action="submit", comment="已补发工资"), viewer=OFFICER)  # no photo
    walk(orders, case_id, "verify")
    closed = orders.transition(case_id, MoveRequest(action="close", outcome="欠薪已清偿"), viewer=OFFICER)
    assert (closed["kind"], closed["state"], closed["outcome"]) == ("supervision", "closed", "欠薪已清偿")
    amendment = orders.order(case_id, viewer=OFFICER)["history"][1]
    assert amendment["details"] == {
        "before": {"officer": "unassigned", "notes": "opened automatically: risk tier 4"},
        "after": {"officer": "张主席", "notes": "约谈企业负责人"},
    }
    with pytest.raises(InputError, match="supervision is for risk tier 4 or higher, not 3"):
        orders.create_supervision(NewSupervisionRequest(enterprise_id="S9", risk_tier=3), viewer=OFFICER)
    with pytest.raises(InputError, match="enterprise 'S3' already has an active supervision case"):
        orders.create_supervision(NewSupervisionRequest(enterprise_id="S3", risk_tier=5), viewer=OFFICER)


def test_dashboard_counts_overdue_and_median_days(stores):
    review, orders = stores
    ids = [
        orders.create_order(
            new_order(confirmed_case(review, {"wet_floor": 0.8}, site=f"s{i % 2}"), f"E{i % 2}"), viewer=OFFICER, now=T0
        )["id"]
        for i in range(4)
    ]
    walk(orders, ids[0], "start", "submit", "verify", at=T0 + dt.timedelta(days=2))
    walk(orders, ids[1], "start", "submit", "verify", "close", at=T0 + dt.timedelta(days=4))
    figures = dashboard.summary(review.engine, now=T0 + dt.timedelta(days=8))
    assert figures["by_state"] == {"open": 2, "in_progress": 0, "submitted": 0, "verified": 1, "closed": 1}
    assert (figures["overdue"], figures["unrectified"], figures["median_days_to_rectify"]) == (2, 2, 3.0)
    assert {e["key"]: e["overdue"] for e in figures["by"]["enterprise"]} == {"E0": 1, "E1": 1}
    assert figures["weekly"][-2] == {"week": "2026-W45", "starts": "2026-11-02", "opened": 4, "rectified": 2}
    assert figures["supervision"] == {"by_state": dict.fromkeys(figures["by_state"], 0), "overdue": 0}
    orders.supervise_high_tiers([{"enterprise_id": "S1", "tier": 5}], now=T0)
    later = dashboard.summary(review.engine, now=T0 + dt.timedelta(days=30))["supervision"]
    assert (later["by_state"]["open"], later["overdue"]) == (1, 1)
    csv = dashboard.summary_csv(dashboard.summary(review.engine, now=T0 + dt.timedelta(days=8), top=None)).decode()
    assert csv.splitlines()[:2] == [
        "dimension,key,orders,unrectified,overdue,rectified,median_days_to_rectify",
        "all,all,4,2,2,2,3.0",
    ]


def test_transitions_are_never_updated_or_deleted(stores):
    review, orders = stores
    order = orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER)
    with review.engine.connect() as connection:
        first = connection.execute(sa.select(transitions)).all()
    walk(orders, order["id"], "start", "submit")
    with review.engine.connect() as connection:
        later = connection.execute(sa.select(transitions).order_by(transitions.c.id)).all()
    assert later[: len(first)] == first and len(later) == 3


def test_cached_figures_follow_every_change_and_the_clock(stores):
    review, orders = stores
    cache = dashboard.CachedFigures()
    order = orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER, now=T0)
    assert cache.get(review.engine, now=T0)["by_state"]["open"] == 1
    walk(orders, order["id"], "start", at=T0 + dt.timedelta(seconds=1))
    assert cache.get(review.engine, now=T0)["by_state"]["in_progress"] == 1
    assert cache.get(review.engine, now=T0)["overdue"] == 0
    assert cache.get(review.engine, now=T0 + dt.timedelta(days=2))["overdue"] == 1


def test_the_intake_receipt_is_written_with_the_case_or_not_at_all(stores):
    review, _orders = stores
    image = Image.new("RGB", (48, 32), (30, 200, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    assessment = build_assessment(
        {"fire_smoke": 0.9}, {"fire_smoke": 0.5}, model_name="hazard_photo", model_version="t"
    )
    photo = {"data": buffer.getvalue(), "image": image, "assessment": assessment}
    also = functools.partial(receipts.record_receipt, photo_id="a" * 32)
    stored = review.record_assessment(photo_id="a" * 32, **photo, also=also)
    assert receipts.report_status(review.engine, stored["also"])["stage"] == "received"

    def failing_receipt(connection):
        receipts.record_receipt(connection, "b" * 32)
        raise RuntimeError("the disk filled up")

    with pytest.raises(RuntimeError):
        review.record_assessment(photo_id="b" * 32, **photo, also=failing_receipt)
    with pytest.raises(InputError):  # one transaction: no case without its receipt
        review.case("b" * 32)
