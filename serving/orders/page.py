"""The order pages, server-rendered HTML: the officers' dashboard (inline SVG bar charts, no external
host), one order (officers and its enterprise), an enterprise's own orders, and the form that issues an
order from a confirmed review case. Chinese first with English beside it; times in the reader's zone."""

from __future__ import annotations

from html import escape
from typing import Any

from runtime.taxonomy import load_taxonomy
from serving.orders.words import (
    KIND_NAMES,
    STATE_NAMES,
    action_name,
    actor_name,
    button_name,
    due_in,
    hazard_name,
    navigation,
    page,
    severity_name,
    state_name,
    when,
)

BAR, GAP, LABEL_WIDTH, CHART_WIDTH = 22, 6, 190, 640
WEEK_NAMES = {"opened": "新增 opened", "rectified": "整改 rectified"}


def bar_chart(title: str, bars: list[tuple[str, int]], *, chart_id: str) -> str:
    """Horizontal bars, one per (label, value), scaled to the largest value; says so when there is none."""
    if not bars:
        return (
            f'<figure id="{chart_id}"><figcaption>{escape(title)}</figcaption><p class="empty">暂无 None</p></figure>'
        )
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
                f'height="{height}"><title>{escape(week["week"])} {WEEK_NAMES[name]}: {week[name]}</title></rect>'
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


DIMENSION_NAMES = {
    "site": ("站点", "site"),
    "enterprise": ("企业", "enterprise"),
    "district": ("区", "district"),
    "hazard": ("隐患类型", "hazard type"),
}
EMPTY = '<p class="empty">暂无 <span class="en">None</span></p>'


def _key_cell(name: str, key: str) -> str:
    if key == "(none)":
        return '未填写 <span class="en">not given</span>'
    return hazard_name(key) if name == "hazard" else escape(key)


def breakdown_table(name: str, entries: list[dict[str, Any]]) -> str:
    zh, en = DIMENSION_NAMES.get(name, (name, name))
    head = (
        f'<tr><th>{escape(zh)} <span class="en">{escape(en)}</span></th><th>整改单 <span class="en">orders</span></th>'
        '<th>未整改 <span class="en">unrectified</span></th><th>逾期 <span class="en">overdue</span></th>'
        '<th>已整改 <span class="en">rectified</span></th>'
        '<th>整改中位天数 <span class="en">median days</span></th></tr>'
    )
    body = (
        "".join(
            f"<tr><td>{_key_cell(name, e['key'])}</td><td>{e['orders']}</td><td>{e['unrectified']}</td>"
            f"<td>{e['overdue']}</td><td>{e['rectified']}</td>"
            f"<td>{'' if e['median_days_to_rectify'] is None else e['median_days_to_rectify']}</td></tr>"
            for e in entries
        )
        or '<tr><td colspan="6" class="empty">暂无 <span class="en">None</span></td></tr>'
    )
    caption = f'按{escape(zh)} <span class="en">by {escape(en)}</span>'
    return f'<table id="by-{escape(name)}"><caption>{caption}</caption>{head}{body}</table>'


def _due_cell(order: dict[str, Any]) -> str:
    late = ' class="overdue"' if order.get("overdue") else ""
    left = due_in(order["due_at"]) if order["state"] not in ("verified", "closed") else ""
    return f"<td{late}>{when(order['due_at'])}<br><small>{escape(left)}</small></td>"


def orders_table(caption: str, orders: list[dict[str, Any]], *, table_id: str, enterprise: bool = True) -> str:
    """Orders linked to their pages: hazard, enterprise, site, state, due (overdue in red), last change."""
    rows = "".join(
        f'<tr class="{"major" if o.get("severity") == "疑似重大" else ""}">'
        f'<td><a href="/orders/{escape(o["id"])}">{escape(o["id"][:8])}</a></td>'
        f"<td>{hazard_name((o.get('comparison') or {}).get('hazard') or _first_hazard(o))}</td>"
        + (f"<td>{escape(o['enterprise_id'])}</td>" if enterprise else "")
        + f"<td>{escape(o['site_id'] or '—')}</td><td>{state_name(o['state'])}</td>{_due_cell(o)}"
        f"<td>{when(o['updated_at'])}</td></tr>"
        for o in orders
    )
    head = (
        '<tr><th>编号 <span class="en">order</span></th><th>隐患 <span class="en">hazard</span></th>'
        + ('<th>企业 <span class="en">enterprise</span></th>' if enterprise else "")
        + '<th>站点 <span class="en">site</span></th><th>状态 <span class="en">state</span></th>'
        '<th>整改期限 <span class="en">due</span></th><th>最近变动 <span class="en">last change</span></th></tr>'
    )
    columns = 7 if enterprise else 6
    body = rows or f'<tr><td colspan="{columns}" class="empty">暂无 <span class="en">None</span></td></tr>'
    return f'<table id="{table_id}" class="orders"><caption>{caption}</caption>{head}{body}</table>'


def _first_hazard(order: dict[str, Any]) -> str | None:
    hazards = order.get("hazards") or []
    return hazards[0].get("type") if hazards else None


# The officers' queues on the dashboard: (state, table id, caption)
DASHBOARD_QUEUES = (
    ("submitted", "waiting", '待复查 <span class="en">waiting for verification</span>'),
    ("verified", "verified-orders", '已复查待闭环 <span class="en">verified, to close</span>'),
    ("open", "open-orders", '待企业开始整改 <span class="en">open: waiting for the enterprise</span>'),
    ("in_progress", "in-progress-orders", '整改中 <span class="en">in progress at the enterprise</span>'),
    ("closed", "closed-orders", '已闭环 <span class="en">closed</span>'),
)


def render_dashboard(figures: dict[str, Any], *, queues: dict[str, list[dict[str, Any]]], who: str = "") -> str:
    median, supervision = figures["median_days_to_rectify"], figures["supervision"]
    median_text = "–" if median is None else median
    open_cases = sum(supervision["by_state"].values()) - supervision["by_state"]["closed"]
    tiles = (
        f'<ul id="tiles"><li>整改单 <span class="en">orders</span> <b id="total">{figures["orders"]}</b></li>'
        f'<li>未整改 <span class="en">unrectified</span> <b id="unrectified">{figures["unrectified"]}</b></li>'
        f'<li class="{"alert" if figures["overdue"] else ""}">逾期 <span class="en">overdue</span> '
        f'<b id="overdue">{figures["overdue"]}</b></li>'
        f'<li>整改中位天数 <span class="en">median days to rectify</span> <b id="median">{median_text}</b></li>'
        f'<li>督办 <span class="en">supervision open</span> <b id="supervision">{open_cases}</b>'
        f' 逾期 <span class="en">overdue</span> {supervision["overdue"]}</li></ul>'
    )
    states = bar_chart(
        "按状态 Orders by state",
        [(f"{zh} {en}", figures["by_state"].get(s, 0)) for s, (zh, en) in STATE_NAMES.items()],
        chart_id="by-state",
    )
    enterprises = bar_chart(
        "未整改最多的企业 Enterprises with most unrectified orders",
        [(e["key"], e["unrectified"]) for e in figures["by"]["enterprise"][:10] if e["unrectified"] > 0],
        chart_id="by-enterprise-chart",
    )
    lists = "".join(
        orders_table(caption, queues.get(state, []), table_id=table_id) for state, table_id, caption in DASHBOARD_QUEUES
    )
    tables = "".join(breakdown_table(name, entries) for name, entries in figures["by"].items())
    body = f"""<header><h1>整改闭环 <span class="en">Rectification dashboard</span></h1>
<p>截至 <span class="en">as of</span> {when(figures["generated_at"])} · 数据 <span class="en">data</span>:
<a href="/v1/orders/dashboard">JSON</a> · <a href="/v1/orders/dashboard.csv">CSV</a> ·
<a href="/v1/orders/overdue">逾期清单 <span class="en">overdue list</span></a></p></header>
<main>{tiles}<div class="lists">{lists}</div>
<div class="charts">{states}{weekly_chart(figures["weekly"])}{enterprises}</div>
<div class="tables">{tables}</div></main>"""
    return page("整改闭环 Rectification dashboard", body, nav=navigation(officer=True, who=who))


OFFICER_ACTIONS = {"submitted": ("verify", "reject"), "verified": ("close",)}
OFFICER_HINTS = {  # state: what the officer is asked to do
    "submitted": (
        "企业已提交整改照片：对照整改前后照片，复查通过或退回整改。",
        "The enterprise submitted its proof: compare the photos before and after, then verify or reject.",
    ),
    "verified": ("已复查通过：确认无遗留问题后闭环。", "Verified: close the order when nothing is left to do."),
}
ENTERPRISE_WAITS = {  # state: what an enterprise reads while the next step is the officer's
    "submitted": ("已提交，等待安全员复查", "submitted; waiting for the officer's check"),
    "verified": ("安全员已复查通过，等待闭环", "verified by the officer; waiting to be closed"),
    "closed": ("已闭环", "closed"),
}
OFFICER_WAITS = {  # state: what an officer reads while the next step is the enterprise's
    "open": ("等待企业开始整改", "waiting for the enterprise to start"),
    "in_progress": ("等待企业提交整改照片", "waiting for the enterprise's proof photo"),
    "closed": ("已闭环", "closed"),
}
SCENE_WARN_BELOW = 0.7  # see serving/orders/proof.py: unrelated photos are about 0.5 alike


def _scene_note(scene: dict[str, Any] | None) -> str:
    if not scene:
        return ""
    figure = (
        f'场景相似度 <span class="en">scene similarity</span> <b id="scene-similarity">{scene["similarity"]:.0%}</b>'
    )
    if scene.get("near_duplicate"):
        warning = (
            "与整改前照片几乎相同：可能不是整改后重新拍摄的。 "
            "Nearly the same photo as the original: it may not be a new photo."
        )
    elif scene["similarity"] < SCENE_WARN_BELOW:
        warning = "与整改前照片不像同一现场，请核实。 This does not look like the same scene as the original; check it."
    else:
        return f'<p class="scene">{figure}</p>'
    return f'<p class="scene warn" role="alert">{figure} · {escape(warning)}</p>'


def _photo_panel(title: str, side: dict[str, Any] | None, hazard: str | None, *, order_id: str, panel_id: str) -> str:
    if side is None:
        return (
            f'<figure class="photo" id="{panel_id}"><figcaption>{title}</figcaption>'
            '<p class="empty">尚未提交 <span class="en">not submitted yet</span></p></figure>'
        )
    probability = "–" if side["probability"] is None else f"{side['probability']:.3f}"
    return (
        f'<figure class="photo" id="{panel_id}"><figcaption>{title}: {hazard_name(hazard)} '
        f'· 概率 <span class="en">P</span> <b class="probability">{probability}</b></figcaption>'
        f'<img src="/orders/{escape(order_id)}/photos/{panel_id}" alt="{escape(panel_id)}">'
        f"{_scene_note(side.get('scene'))}</figure>"
    )


def _history(order: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{when(e['created_at'])}</td><td>{action_name(e['action'])}</td>"
        f"<td>{state_name(e['to'])}</td><td>{actor_name(e['actor'])}</td><td>{escape(e['comment'] or '')}</td></tr>"
        for e in order["history"]
    )
    return (
        '<table id="history"><caption>记录 <span class="en">history</span></caption>'
        '<tr><th>时间 <span class="en">when</span></th><th>操作 <span class="en">action</span></th>'
        '<th>状态 <span class="en">state</span></th><th>操作人 <span class="en">who</span></th>'
        f'<th>意见 <span class="en">comment</span></th></tr>{rows}</table>'
    )


def _waiting(zh: str, en: str, order: dict[str, Any]) -> str:
    """Whom the order waits for, since its last change."""
    since = _since(order)
    return f'<p id="waiting-for">{escape(zh)}（自 {since} 起） <span class="en">· {escape(en)} since {since}</span></p>'


def _since(order: dict[str, Any]) -> str:
    return when(order["history"][-1]["created_at"]) if order["history"] else when(order["updated_at"])


def _officer_step(order: dict[str, Any]) -> str:
    buttons = "".join(
        f'<button type="button" data-action="{a}">{button_name(a)}</button>'
        for a in OFFICER_ACTIONS.get(order["state"], ())
    )
    if buttons:
        zh, en = OFFICER_HINTS.get(order["state"], ("", ""))
        return (
            f'<p>{escape(zh)} <span class="en">{escape(en)}</span></p>'
            f'<form id="act" data-order="{escape(order["id"])}"><textarea name="comment" rows="2" cols="60" '
            'placeholder="意见 comment"></textarea><div>' + buttons + '</div><p id="message" role="status"></p></form>'
        )
    zh, en = OFFICER_WAITS.get(order["state"], ("", ""))
    return _waiting(zh, en, order)


def _enterprise_step(order: dict[str, Any]) -> str:
    order_id = escape(order["id"])
    if order["state"] == "open":
        return (
            f'<form id="act" data-order="{order_id}"><p>请确认已收到整改单并开始整改。 '
            '<span class="en">Confirm you have received the order and start.</span></p>'
            f'<div><button type="button" data-action="start">{button_name("start")}</button></div>'
            '<p id="message" role="status"></p></form>'
        )
    if order["state"] == "in_progress":
        return (
            f'<form id="proof" data-order="{order_id}" enctype="multipart/form-data">'
            '<p>整改完成后，在同一位置、同一角度拍摄整改后的照片并上传。 <span class="en">When the hazard is fixed, '
            "photograph the same place from the same angle and upload it.</span></p>"
            '<label>整改后照片 <span class="en">proof photo</span> '
            '<input type="file" name="photo" accept="image/jpeg,image/png,image/webp" required></label>'
            '<label>整改说明 <span class="en">what was done</span><br><textarea name="comment" rows="3" cols="60" '
            'maxlength="4000"></textarea></label>'
            f'<div><button type="submit">{button_name("submit")}</button></div>'
            '<p id="message" role="status"></p></form>'
        )
    zh, en = ENTERPRISE_WAITS.get(order["state"], ("", ""))
    outcome = f'<p>结论 <span class="en">outcome</span>: {escape(order["outcome"])}</p>' if order.get("outcome") else ""
    return _waiting(zh, en, order) + outcome


def _facts(order: dict[str, Any]) -> str:
    comparison = order.get("comparison") or {}
    rows = [
        ("企业", "enterprise", escape(order["enterprise_id"])),
        ("站点", "site", escape(order["site_id"] or "—")),
        ("区", "district", escape(order["district"] or "—")),
        ("隐患", "hazard", hazard_name(comparison.get("hazard") or _first_hazard(order))),
        ("严重程度", "severity", severity_name(order["severity"])),
        ("整改责任人", "assignee", escape(order["assignee"] or "未指定 not named")),
        ("负责安全员", "responsible officer", escape(order["officer"] or "—")),
        ("下达时间", "issued", when(order["created_at"])),
        (
            "整改期限",
            "due",
            f"{when(order['due_at'])} <small>{escape('' if order['rectified'] else due_in(order['due_at']))}</small>",
        ),
        ("整改措施", "measures", escape(order["measures"] or "—")),
    ]
    if order.get("overdue"):
        rows.append(("逾期", "overdue", '<b class="overdue">已逾期 overdue</b>'))
    cells = "".join(
        f'<dt>{zh} <span class="en">{en}</span></dt><dd id="fact-{en.replace(" ", "-")}">{value}</dd>'
        for zh, en, value in rows
    )
    return f'<dl class="facts">{cells}</dl>'


def render_order(order: dict[str, Any], *, officer: bool = True, who: str = "") -> str:
    """One order: its facts, the next step (the officer's buttons, the enterprise's start button or
    proof upload, or whom it waits for since when), the before / after photos and the history."""
    comparison = order.get("comparison") or {}
    photos = ""
    if comparison:
        panels = [
            _photo_panel(title, comparison[side], comparison["hazard"], order_id=order["id"], panel_id=panel)
            for title, side, panel in (
                ('整改前 <span class="en">before</span>', "before", "original"),
                ('整改后 <span class="en">after</span>', "after", "proof"),
            )
        ]
        photos = f'<div class="pair">{"".join(panels)}</div>'
    kind_zh, kind_en = KIND_NAMES.get(order["kind"], ("整改单", "order"))
    step = _officer_step(order) if officer else _enterprise_step(order)
    urgent = '<span class="urgent-badge">紧急 urgent</span>' if order["severity"] == "疑似重大" else ""
    body = f"""<header><h1>{escape(kind_zh)} <span class="en">{escape(kind_en)}</span> {escape(order["id"][:8])}
<span id="state" data-state="{escape(order["state"])}">{state_name(order["state"])}</span>{urgent}</h1></header>
<main>{_facts(order)}<section class="next-step"><h2>下一步 <span class="en">next step</span></h2>{step}</section>
{photos}{_history(order)}</main>"""
    return page(f"{kind_zh} {order['id'][:8]}", body, scripts=("order.js",), nav=navigation(officer=officer, who=who))


def render_enterprise_orders(open_orders: list[dict[str, Any]], done: list[dict[str, Any]], *, who: str) -> str:
    """An enterprise's own orders: those to act on (soonest due first), then the rectified ones."""
    body = f"""<header><h1>本企业整改单 <span class="en">Our rectification orders</span></h1>
<p>请在整改期限前开始整改并上传整改后照片。
<span class="en">Start each order and upload the proof photo before it is due.</span></p></header>
<main>{orders_table('待办 <span class="en">to do</span>', open_orders, table_id="my-orders", enterprise=False)}
{orders_table('已整改 <span class="en">rectified</span>', done, table_id="my-done", enterprise=False)}</main>"""
    return page("本企业整改单 Our orders", body, nav=navigation(officer=False, who=who))


def _hazard_option(hazard: str, main_hazard: str | None, due_hours: dict[str, int]) -> str:
    """One hazard to choose, with its severity and the due time that severity gives."""
    known = load_taxonomy().get(hazard)
    zh, en, severity = (known.name_zh, known.name_en, known.severity) if known else (hazard, "", "")
    selected = " selected" if hazard == main_hazard else ""
    hours = due_hours.get(severity, "")
    label = f"{escape(zh)} {escape(en)} · {escape(severity)} {hours} 小时 h"
    return f'<option value="{escape(hazard)}"{selected}>{label}</option>'


def render_issue_form(
    case: dict[str, Any], hazards: list[str], main_hazard: str | None, due_hours: dict[str, int], *, who: str
) -> str:
    """The form that issues a rectification order from a confirmed case (issue.js posts it)."""
    options = "".join(_hazard_option(h, main_hazard, due_hours) for h in hazards)
    photo_id = escape(case["photo_id"])
    site = escape(case["metadata"].get("site_id") or "")
    body = f"""<header><h1>下达整改单 <span class="en">Issue a rectification order</span></h1>
<p>来自已确认的隐患照片 <span class="en">from the confirmed case</span>
<a href="/review?status=all">{photo_id[:8]}</a> ·
{when(case["created_at"])}</p></header>
<main class="issue"><img class="case-photo" src="/v1/review/{photo_id}/photo" alt="case photo">
<form id="issue" data-photo="{photo_id}">
<label>企业编号 <span class="en">enterprise id</span> *<br>
<input name="enterprise_id" required maxlength="200" autocomplete="off"></label>
<label>隐患 <span class="en">hazard to rectify</span> (整改期限按严重程度 <span class="en">due by severity</span>)<br>
<select name="hazard">{options}</select></label>
<label>站点 <span class="en">site</span><br><input name="site_id" maxlength="200" value="{site}"></label>
<label>区 <span class="en">district</span><br><input name="district" maxlength="200"></label>
<label>整改责任人 <span class="en">assignee at the enterprise</span><br><input name="assignee" maxlength="200"></label>
<label>整改措施 <span class="en">measures required</span><br>
<textarea name="measures" rows="3" maxlength="4000"></textarea></label>
<p><button type="submit">下达 <span class="en">Issue</span></button></p>
<p id="message" role="status"></p></form></main>"""
    return page("下达整改单 Issue an order", body, scripts=("issue.js",), nav=navigation(officer=True, who=who))
