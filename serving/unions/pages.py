"""The officers' union pages, rendered by Jinja2 (serving/unions/templates/), Chinese first with
English beside, times shown in the reader's local time (static/local-time.js), the same sign-in as
/review and /orders:

- /unions/: the grade distribution by type and by layer (SVG stacked bars), filters, the unions;
- /unions/{id}: a union's grade with its factors, history, enterprises and open orders;
- /unions/review-meeting?week=: the weekly review (每周议), and /unions/review-meeting/report the
  same as a printable document (print to PDF from the browser);
- /unions/assigned: the enterprises assigned to the signed-in officer and what changed;
- /unions/enterprises/{id}: an enterprise's kept scores, its tier over time, unions and officers.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from serving.api.app import route_app
from serving.api.dependencies import role
from serving.unions.api import Officer, Stores, not_found_in, with_database_outage_answered
from serving.unions.grading import GRADES, union_types
from serving.unions.meeting import review_meeting, week_bounds
from serving.unions.store import UnionFilter

HERE = Path(__file__).resolve().parent
TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
TYPE_NAMES = {
    "enterprise": "企业工会",
    "community": "社区工会",
    "industrial_park": "园区工会",
    "industry": "行业工会",
    "group": "集团工会",
    "building": "楼宇工会",
    "market": "市场工会",
    "platform": "平台工会",
    "joint": "联合工会",
    "other": "其他",
}
FACTOR_NAMES = {
    "union_type": "工会类型 union type",
    "highest_tier": "企业最高风险等级 highest enterprise tier",
    "high_tier_share": "4-5级企业占比 share at tier ≥ 4",
    "enterprise_count": "覆盖企业数 enterprises covered",
    "industrial_share": "产业工人占比 industrial workers",
    "new_employment_share": "新就业形态占比 new-employment-form workers",
    "migrant_share": "农民工占比 migrant workers",
}
CHANGE_NAMES = {
    "rose": "上升 rose",
    "fell": "下降 fell",
    "same": "不变 same",
    "new": "首次 new",
    "unscored": "未评 unscored",
}
NO_STORE = {"Cache-Control": "no-store"}
BAR, GAP, LABEL_WIDTH, CHART_WIDTH = 20, 6, 170, 620


def stacked_chart(title: str, rows: dict[str, dict[str, int]], *, chart_id: str, labels: dict[str, str]) -> Markup:
    """One horizontal bar per row, split by grade (1 left .. 5 right, ungraded last), scaled to the largest row."""
    order = [str(g) for g in GRADES] + ["ungraded"]
    top = max([sum(counts.values()) for counts in rows.values()] + [1])
    height = len(rows) * (BAR + GAP) + GAP
    bars = []
    for index, (name, counts) in enumerate(rows.items()):
        y, x = GAP + index * (BAR + GAP), LABEL_WIDTH
        segments = []
        for grade in order:
            value = counts.get(grade, 0)
            if not value:
                continue
            width = (CHART_WIDTH - LABEL_WIDTH - 50) * value / top
            segments.append(
                f'<rect class="g{grade}" data-grade="{grade}" data-value="{value}" x="{x:.1f}" y="{y}" '
                f'width="{width:.1f}" height="{BAR}"><title>{escape(labels.get(name, name))} · '
                f"grade {grade}: {value}</title></rect>"
            )
            x += width
        total = sum(counts.values())
        bars.append(
            f'<g class="row" data-label="{escape(name)}" data-total="{total}">'
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR * 0.7}" text-anchor="end">{escape(labels.get(name, name))}</text>'
            f'{"".join(segments)}<text x="{x + 6:.1f}" y="{y + BAR * 0.7}">{total}</text></g>'
        )
    key = "".join(f'<span class="key"><i class="g{g}"></i>{g}级</span>' for g in GRADES)
    return Markup(
        f'<figure id="{chart_id}"><figcaption>{escape(title)} {key}</figcaption>'
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {CHART_WIDTH} {height}" '
        f'width="{CHART_WIDTH}" height="{height}">{"".join(bars)}</svg></figure>'
    )


def trend_chart(trend: list[dict[str, Any]]) -> Markup:
    """Enterprises at tier >= 4 per week, oldest on the left (the other series are in the table)."""
    rows = {week["week"]: {"4": week["enterprises_at_tier_4_or_5"]} for week in trend}
    return stacked_chart("近12周 ≥4级企业 Enterprises at tier ≥ 4 per week", rows, chart_id="trend-chart", labels={})


def who_of(principal: Any) -> str:
    """Who is signed in, as the other pages' navigation shows it."""
    return getattr(principal, "holder", "") or getattr(principal, "key_id", "")


def render(template: str, **context: Any) -> HTMLResponse:
    context.setdefault("printable", False)
    context.setdefault("who", "")
    page = TEMPLATES.get_template(template).render(
        type_names=TYPE_NAMES, factor_names=FACTOR_NAMES, change_names=CHANGE_NAMES, **context
    )
    return HTMLResponse(page, headers=NO_STORE)


page_router = APIRouter(dependencies=[Depends(role("reviewer"))], include_in_schema=False)


@page_router.get("/")
def unions_page(
    stores: Stores,
    officer: Officer,
    grade: Annotated[int | None, Query(ge=1, le=5)] = None,
    layer: Annotated[str | None, Query(max_length=32)] = None,
    union_type: Annotated[str | None, Query(alias="type", max_length=32)] = None,
    district: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    where = UnionFilter(
        grade=grade, layer=layer or None, union_type=union_type or None, district=district or None, limit=500
    )
    listed = stores.unions.list(where)
    distribution = stores.unions.distribution()
    layers = stores.unions.grading.layers
    layer_names = {layer.name: f"{layer.zh} {layer.en}" for layer in layers}
    query = "&".join(
        f"{name}={escape(str(value))}"
        for name, value in (("grade", grade), ("layer", layer), ("type", union_type), ("district", district))
        if value
    )
    return render(
        "unions.html",
        who=who_of(officer),
        unions=listed["unions"],
        total=listed["total"],
        filters=where,
        query=query,
        layers=layers,
        layer_names=layer_names,
        layer_counts={name: sum(counts.values()) for name, counts in distribution["by_layer"].items()},
        types=union_types(),
        by_type_chart=stacked_chart(
            "按类型的等级分布 Grades by union type",
            distribution["by_type"],
            chart_id="by-type",
            labels={name: f"{TYPE_NAMES.get(name, name)} {name}" for name in distribution["by_type"]},
        ),
        by_layer_chart=stacked_chart(
            "按层级的等级分布 Grades by layer",
            distribution["by_layer"],
            chart_id="by-layer",
            labels={**layer_names, "ungraded": "未分级 ungraded"},
        ),
    )


def _meeting_page(stores: Stores, week: str | None, *, printable: bool, who: str) -> HTMLResponse:
    meeting = review_meeting(stores.engine, week)
    _, start, _ = week_bounds(meeting["week"])
    neighbour = lambda days: "{}-W{:02d}".format(*(start + dt.timedelta(days=days)).isocalendar()[:2])  # noqa: E731
    return render(
        "meeting.html",
        m=meeting,
        printable=printable,
        who=who,
        previous_week=neighbour(-7),
        next_week=neighbour(7),
        trend_chart=trend_chart(meeting["trend"]),
    )


@page_router.get("/review-meeting")
def meeting_page(
    stores: Stores, officer: Officer, week: Annotated[str | None, Query(max_length=10)] = None
) -> HTMLResponse:
    return _meeting_page(stores, week, printable=False, who=who_of(officer))


@page_router.get("/review-meeting/report")
def meeting_report(
    stores: Stores, officer: Officer, week: Annotated[str | None, Query(max_length=10)] = None
) -> HTMLResponse:
    """The same review as a printable document: no navigation, print styles, a print button."""
    return _meeting_page(stores, week, printable=True, who=who_of(officer))


@page_router.get("/assigned")
def assigned_page(stores: Stores, officer: Officer) -> HTMLResponse:
    holder = f"{officer.holder} · key {officer.key_id}" if officer.holder else f"key {officer.key_id}"
    enterprises = stores.enterprises.assigned_to(officer.key_id)
    return render("assigned.html", officer=holder, enterprises=enterprises, who=who_of(officer))


def tier_history_chart(history: list[dict[str, Any]]) -> Markup:
    """The tier of each kept score, oldest on the left (up to the 200 the history holds)."""
    scores = list(reversed(history))
    step, plot = max(4, min(40, (CHART_WIDTH - 40) // max(len(scores), 1))), 120
    bars = "".join(
        f'<rect class="g{s["tier"]}" data-tier="{s["tier"]}" x="{20 + i * step}" '
        f'y="{10 + plot - plot * s["tier"] // 5}" width="{max(step - 2, 2)}" height="{plot * s["tier"] // 5}">'
        f"<title>{escape(s['scored_at'] or '')}: tier {s['tier']}</title></rect>"
        for i, s in enumerate(scores)
    )
    return Markup(
        '<figure id="tier-history"><figcaption>风险等级变化 Tier over time</figcaption>'
        f'<svg role="img" aria-label="tier over time" viewBox="0 0 {CHART_WIDTH} {plot + 20}" width="{CHART_WIDTH}" '
        f'height="{plot + 20}">{bars}</svg></figure>'
    )


@page_router.get("/enterprises/{enterprise_id}")
def enterprise_page(enterprise_id: str, stores: Stores, officer: Officer) -> HTMLResponse:
    kept = stores.enterprises.enterprise(enterprise_id, officer=True)
    chart = tier_history_chart(kept["history"])
    return render("enterprise.html", e=kept, history_chart=chart, who=who_of(officer))


@page_router.get("/{union_id}")
def union_page(union_id: str, stores: Stores, officer: Officer) -> HTMLResponse:
    union = stores.unions.union(union_id)
    layer_names = {layer.name: f"{layer.zh} {layer.en}" for layer in stores.unions.grading.layers}
    return render("union.html", u=union, layer_names=layer_names, who=who_of(officer))


unions_page_app = with_database_outage_answered(
    route_app(
        page_router,
        not_found=not_found_in("/unions/, /unions/{id}, /unions/review-meeting?week=2026-W49, /unions/assigned"),
        static=HERE / "static",
    )
)
