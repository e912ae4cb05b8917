"""The officers' dashboard page: server-rendered HTML with inline SVG bar charts (no script, no external host)."""

from __future__ import annotations

from html import escape
from typing import Any

STATE_NAMES = {
    "open": "待整改 open",
    "in_progress": "整改中 in progress",
    "submitted": "待复查 submitted",
    "verified": "已复查 verified",
    "closed": "已闭环 closed",
}
BAR, GAP, LABEL_WIDTH, CHART_WIDTH = 22, 6, 190, 640


def bar_chart(title: str, bars: list[tuple[str, int]], *, chart_id: str) -> str:
    """Horizontal bars, one per (label, value), scaled to the largest value."""
    top = max([value for _, value in bars] + [1])
    height = len(bars) * (BAR + GAP) + GAP
    rows = []
    for index, (label, value) in enumerate(bars):
        y = GAP + index * (BAR + GAP)
        width = round((CHART_WIDTH - LABEL_WIDTH - 60) * value / top)
        rows.append(
            f'<g class="bar" data-label="{escape(label)}" data-value="{value}">'
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR * 0.7}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width}" height="{BAR}"></rect>'
            f'<text x="{LABEL_WIDTH + width + 6}" y="{y + BAR * 0.7}">{value}</text></g>'
        )
    return (
        f'<figure id="{chart_id}"><figcaption>{escape(title)}</figcaption>'
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {CHART_WIDTH} {height}" '
        f'width="{CHART_WIDTH}" height="{height}">{"".join(rows)}</svg></figure>'
    )


def weekly_chart(weeks: list[dict[str, Any]]) -> str:
    """Opened (left bar) and rectified (right bar) per week, oldest on the left."""
    top = max([w["opened"] for w in weeks] + [w["rectified"] for w in weeks] + [1])
    step, plot = CHART_WIDTH // max(len(weeks), 1), 160
    columns = []
    for index, week in enumerate(weeks):
        x = index * step + 8
        bars = ""
        for offset, name in ((0, "opened"), (step // 2 - 4, "rectified")):
            height = round(plot * week[name] / top)
            bars += (
                f'<rect class="{name}" x="{x + offset}" y="{plot - height + 10}" width="{step // 2 - 8}" '
                f'height="{height}"><title>{escape(week["week"])} {name}: {week[name]}</title></rect>'
            )
        columns.append(
            f'<g class="week" data-week="{escape(week["week"])}" data-opened="{week["opened"]}" '
            f'data-rectified="{week["rectified"]}">{bars}<text x="{x}" y="{plot + 28}">'
            f"{escape(week['week'][-3:])}</text></g>"
        )
    return (
        f'<figure id="weekly"><figcaption>每周新增与整改 Opened and rectified per week '
        f'<span class="key opened">新增 opened</span> <span class="key rectified">整改 rectified</span></figcaption>'
        f'<svg role="img" aria-label="weekly trend" viewBox="0 0 {CHART_WIDTH} {plot + 36}" width="{CHART_WIDTH}" '
        f'height="{plot + 36}">{"".join(columns)}</svg></figure>'
    )


def breakdown_table(name: str, entries: list[dict[str, Any]]) -> str:
    head = (
        f"<tr><th>{escape(name)}</th><th>orders</th><th>unrectified</th><th>overdue</th><th>rectified</th>"
        "<th>median days</th></tr>"
    )
    body = "".join(
        f"<tr><td>{escape(e['key'])}</td><td>{e['orders']}</td><td>{e['unrectified']}</td><td>{e['overdue']}</td>"
        f"<td>{e['rectified']}</td><td>{'' if e['median_days_to_rectify'] is None else e['median_days_to_rectify']}"
        f"</td></tr>"
        for e in entries
    )
    return f'<table id="by-{escape(name)}"><caption>by {escape(name)}</caption>{head}{body}</table>'


def waiting_table(orders: list[dict[str, Any]]) -> str:
    """Orders waiting for an officer (submitted with proof), linked to their pages."""
    body = "".join(
        f'<tr><td><a href="/orders/{escape(o["id"])}">{escape(o["id"][:8])}</a></td>'
        f"<td>{escape(o['enterprise_id'])}</td><td>{escape(o['site_id'] or '')}</td>"
        f"<td>{escape(o['due_at'] or '')}</td></tr>"
        for o in orders
    )
    return (
        f'<table id="waiting"><caption>待复查 waiting for verification</caption><tr><th>order</th>'
        f"<th>enterprise</th><th>site</th><th>due</th></tr>{body}</table>"
    )


def render_dashboard(figures: dict[str, Any], *, waiting: list[dict[str, Any]] = ()) -> str:
    median, supervision = figures["median_days_to_rectify"], figures["supervision"]
    closed = supervision["by_state"]["closed"]
    tiles = (
        f'<ul id="tiles"><li>orders <b id="total">{figures["orders"]}</b></li>'
        f'<li>unrectified <b id="unrectified">{figures["unrectified"]}</b></li>'
        f'<li>overdue <b id="overdue">{figures["overdue"]}</b></li>'
        f'<li>median days to rectify <b id="median">{"–" if median is None else median}</b></li>'
        f'<li>督办 supervision open <b id="supervision">{sum(supervision["by_state"].values()) - closed}</b>'
        f" (overdue {supervision['overdue']})</li></ul>"
    )
    states = bar_chart(
        "按状态 Orders by state", [(STATE_NAMES[s], n) for s, n in figures["by_state"].items()], chart_id="by-state"
    )
    enterprises = bar_chart(
        "未整改最多的企业 Enterprises with most unrectified orders",
        [(e["key"], e["unrectified"]) for e in figures["by"]["enterprise"][:10]],
        chart_id="by-enterprise-chart",
    )
    tables = "".join(breakdown_table(name, entries) for name, entries in figures["by"].items())
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>安康 · 整改闭环 Rectification dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/orders/static/orders.css"></head>
<body><header><h1>整改闭环 Rectification dashboard</h1>
<p>As of {escape(figures["generated_at"])} · <a href="/v1/orders/dashboard">JSON</a> ·
<a href="/v1/orders/dashboard.csv">CSV</a> · <a href="/v1/orders/overdue">overdue list</a></p></header>
<main>{tiles}<div class="charts">{states}{weekly_chart(figures["weekly"])}{enterprises}</div>
<div class="tables">{waiting_table(list(waiting))}{tables}</div></main></body></html>"""


OFFICER_ACTIONS = {"submitted": ("verify", "reject"), "verified": ("close",)}
ACTION_NAMES = {"verify": "复查通过 verify", "reject": "退回整改 reject", "close": "闭环 close"}


def _photo_panel(title: str, side: dict[str, Any] | None, hazard: str | None, *, order_id: str, panel_id: str) -> str:
    if side is None:
        return f'<figure class="photo" id="{panel_id}"><figcaption>{escape(title)}</figcaption><p>—</p></figure>'
    probability = "–" if side["probability"] is None else f"{side['probability']:.3f}"
    return (
        f'<figure class="photo" id="{panel_id}"><figcaption>{escape(title)}: {escape(hazard or "")} '
        f'<b class="probability">{probability}</b></figcaption>'
        f'<img src="/orders/{escape(order_id)}/photos/{panel_id}" alt="{escape(title)}"></figure>'
    )


def render_order(order: dict[str, Any]) -> str:
    """One order: the original and the proof photo side by side with the hazard's probability in each,
    the history, and the officer's next actions (order.js posts them with the session's CSRF token)."""
    comparison = order.get("comparison") or {}
    photos = ""
    if comparison:
        panels = [
            _photo_panel(title, comparison[side], comparison["hazard"], order_id=order["id"], panel_id=panel)
            for title, side, panel in (("整改前 before", "before", "original"), ("整改后 after", "after", "proof"))
        ]
        photos = f'<div class="pair">{"".join(panels)}</div>'
    rows = "".join(
        f"<tr><td>{escape(e['created_at'] or '')}</td><td>{escape(e['action'])}</td>"
        f"<td>{escape(e['to'])}</td><td>{escape(e['actor'])}</td><td>{escape(e['comment'] or '')}</td></tr>"
        for e in order["history"]
    )
    buttons = "".join(
        f'<button type="button" data-action="{a}">{ACTION_NAMES[a]}</button>'
        for a in OFFICER_ACTIONS.get(order["state"], ())
    )
    actions = (
        f'<form id="act" data-order="{escape(order["id"])}"><textarea name="comment" rows="2" cols="60" '
        f'placeholder="意见 comment"></textarea><div>{buttons}</div><p id="message" role="status"></p></form>'
        if buttons
        else ""
    )
    facts = " · ".join(
        escape(str(order[key])) for key in ("enterprise_id", "site_id", "district", "severity") if order.get(key)
    )
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>安康 · 整改单 {escape(order["id"][:8])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/orders/static/orders.css"><script src="/orders/static/order.js" defer></script></head>
<body><header><h1>整改单 Order {escape(order["id"][:8])} <span id="state" data-state="{escape(order["state"])}">
{escape(STATE_NAMES.get(order["state"], order["state"]))}</span></h1>
<p>{facts} · due {escape(order["due_at"] or "")}{" · <b>overdue</b>" if order["overdue"] else ""}
 · <a href="/orders/">dashboard</a></p><p>{escape(order.get("measures") or "")}</p></header>
<main>{photos}{actions}<table id="history"><caption>history</caption>
<tr><th>when</th><th>action</th><th>state</th><th>who</th><th>comment</th></tr>{rows}</table></main></body></html>"""
