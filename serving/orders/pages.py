"""The order pages' handlers (mounted at /orders): the dashboard for officers and an enterprise's own
orders at the same address, one order for either, and the officers' form that issues an order from a
confirmed review case. Errors answer a page in Chinese and English, not JSON."""

from __future__ import annotations

from html import escape
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from runtime.errors import InputError
from serving.orders.page import (
    DASHBOARD_QUEUES,
    render_dashboard,
    render_enterprise_orders,
    render_issue_form,
    render_order,
)
from serving.orders.requests import OrderFilter
from serving.orders.schema import orders
from serving.orders.states import Viewer
from serving.orders.store import CONFIRMED_CASE_STATUSES, _main_hazard
from serving.orders.words import navigation, page

QUEUE_LENGTH = 20
ERROR_TITLES = {
    400: ("请求有误", "Bad request"),
    401: ("请先登录", "Sign in first"),
    403: ("无权访问", "Not allowed"),
    404: ("未找到", "Not found"),
    409: ("状态不符", "Wrong state"),
    503: ("服务暂不可用", "Service unavailable"),
}


def who_of(request: Request) -> str:
    """Who the page is signed in as: the officer's name and key, or the enterprise."""
    principal = request.scope.get("ankang.principal")
    if principal is None:
        return ""
    if principal.role == "enterprise":
        return f"企业 {principal.enterprise_id}"
    return f"{principal.holder} [key:{principal.key_id}]" if principal.holder else f"key:{principal.key_id}"


def _is_officer(request: Request) -> bool:
    principal = request.scope.get("ankang.principal")
    return getattr(principal, "role", None) != "enterprise"


def html_errors(handler):
    """A page's InputError as a page saying why (Chinese and English), with its status."""

    async def wrapped(request: Request, *args: Any) -> Response:
        try:
            return await handler(request, *args)
        except InputError as error:
            zh, en = ERROR_TITLES.get(error.status_code, ("出错了", "Something went wrong"))
            body = (
                f'<main><h1>{zh} <span class="en">{en}</span></h1><p role="alert">{escape(str(error.message))}</p>'
                '<p><a href="/orders/">返回 <span class="en">back</span></a></p></main>'
            )
            nav = navigation(officer=_is_officer(request), who=who_of(request))
            return HTMLResponse(page(f"{zh} {en}", body, nav=nav), status_code=error.status_code)

    return wrapped


def _viewer(request: Request) -> Viewer:
    from serving.orders.app import viewer_of  # the API's rule: officers see all, an enterprise its own

    return viewer_of(request.scope.get("ankang.principal"))


@html_errors
async def orders_home(request: Request, parts: Any) -> Response:
    """Officers: the dashboard with the orders waiting at each step. An enterprise: its own orders."""
    viewer, store = _viewer(request), parts.order_store
    if not viewer.is_officer:
        todo = await run_in_threadpool(store.orders, OrderFilter(state="unrectified", limit=100), viewer=viewer)
        done = await run_in_threadpool(store.orders, OrderFilter(state="verified", limit=50), viewer=viewer)
        closed = await run_in_threadpool(store.orders, OrderFilter(state="closed", limit=50), viewer=viewer)
        html = render_enterprise_orders(todo["items"], done["items"] + closed["items"], who=who_of(request))
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})
    from serving.orders import dashboard

    figures = await run_in_threadpool(parts.order_figures.get, store.engine)
    queues = {}
    for state, _, _ in DASHBOARD_QUEUES:
        listing = await run_in_threadpool(store.orders, OrderFilter(state=state, limit=QUEUE_LENGTH), viewer=viewer)
        queues[state] = listing["items"]
    html = render_dashboard(dashboard.top_of(figures), queues=queues, who=who_of(request))
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@html_errors
async def order_page(request: Request, parts: Any, order_id: str) -> Response:
    """One order, for officers and for the enterprise it is addressed to (another's is 404)."""
    viewer = _viewer(request)
    order = await run_in_threadpool(parts.order_store.order, order_id, viewer=viewer)
    html = render_order(order, officer=viewer.is_officer, who=who_of(request))
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _issue_context(review_store: Any, photo_id: str) -> tuple[dict[str, Any], list[str]]:
    """The case and its confirmed hazards (the latest decision's); 409 unless confirmed or corrected."""
    case = review_store.case(photo_id)
    if case["status"] not in CONFIRMED_CASE_STATUSES:
        raise InputError(
            "photo_id",
            f"这张照片尚未确认（{case['status']}），请先在复核页确认或更正。 The case is `{case['status']}`: "
            "confirm or correct it on the review page first.",
            status_code=409,
        )
    return case, list(case["history"][-1]["hazards"])


def _order_of_case(store: Any, photo_id: str) -> str | None:
    with store.engine.connect() as connection:
        return connection.execute(sa.select(orders.c.id).where(orders.c.photo_id == photo_id)).scalar()


@html_errors
async def issue_form(request: Request, parts: Any) -> Response:
    """The form that issues a rectification order from a confirmed case (officers only)."""
    viewer = _viewer(request)
    if not viewer.is_officer:
        raise InputError(
            "authorization", "只有工会安全员可以下达整改单。 Only union officers issue orders.", status_code=403
        )
    photo_id = request.query_params.get("photo_id", "")
    if not photo_id:
        raise InputError(
            "photo_id", "缺少 photo_id。 Open this form from a confirmed case on /review.", status_code=400
        )
    existing = await run_in_threadpool(_order_of_case, parts.order_store, photo_id)
    if existing:  # one order per case: the form would only be refused
        return RedirectResponse(f"/orders/{existing}", status_code=303)
    case, hazards = await run_in_threadpool(_issue_context, parts.review_store, photo_id)
    policy = parts.order_store.policy
    due_hours = {name: round(span.total_seconds() / 3600) for name, span in policy.due_by_severity.items()}
    main = _main_hazard(hazards, case["hazards"])
    html = render_issue_form(case, hazards, main, due_hours, who=who_of(request))
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
