"""The officers' claims pages: the queue (filters, most urgent first) and the figures with charts.
Server-rendered HTML, Chinese first with English beside, inline SVG (no external host); times are
written in UTC and shown in the reader's local time by claims.js."""

from __future__ import annotations

from html import escape
from typing import Any

from serving.claims.policy import ClaimsPolicy
from serving.claims.states import STATES
from serving.orders.page import CHART_WIDTH, bar_chart

STATE_NAMES = {
    "accepted": "已受理 accepted",
    "dispatched": "已分派 dispatched",
    "handled": "已办理 handled",
    "closed": "已办结 closed",
}
STALE = ' · <span id="stale">更新中，请稍后刷新 updating: reload in a moment</span>'
DIMENSION_NAMES = {"channel": "渠道 channel", "type": "类型 type", "district": "区 district", "handler": "承办 handler"}
HEAD = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>安康 · {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/orders/static/orders.css"><link rel="stylesheet" href="/claims/static/claims.css">
<script src="/claims/static/claims.js" defer></script></head>"""


def _time(moment: str | None) -> str:
    return "" if not moment else f'<time datetime="{escape(moment)}">{escape(moment)}</time>'


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _select(name: str, label: str, choices: list[tuple[str, str]], current: str | None) -> str:
    options = "".join(
        f'<option value="{escape(value)}"{" selected" if value == (current or "") else ""}>{escape(text)}</option>'
        for value, text in choices
    )
    return f'<label>{escape(label)}<select name="{name}">{options}</select></label>'


def _filters(policy: ClaimsPolicy, query: dict[str, str]) -> str:
    states = [("open", "未办结 open"), ("all", "全部 all")] + [(s, STATE_NAMES[s]) for s in STATES]
    types = [("", "全部 all")] + [(key, f"{t.name_zh} {t.name_en}") for key, t in policy.types.items()]
    channels = [("", "全部 all")] + [(key, f"{c.name_zh} {c.name_en}") for key, c in policy.channels.items()]
    texts = "".join(
        f'<label>{label}<input name="{name}" value="{escape(query.get(name) or "")}" size="14"></label>'
        for name, label in (("enterprise_id", "企业 enterprise"), ("district", "区 district"))
    )
    return (
        '<form id="filters" method="get" action="/claims/">'
        f"{_select('state', '状态 state', states, query.get('state') or 'open')}"
        f"{_select('type', '类型 type', types, query.get('type'))}"
        f"{_select('channel', '渠道 channel', channels, query.get('channel'))}"
        f'{texts}<button type="submit">筛选 filter</button></form>'
    )


def _urgency(case: dict[str, Any]) -> str:
    marks = []
    if case["type"] == "work_injury":
        marks.append('<span class="urgent">工伤 injury</span>')
    if case["mass"]:
        marks.append('<span class="mass">群体 mass</span>')
    if case["overdue"]:
        marks.append('<span class="overdue">超期 overdue</span>')
    return " ".join(marks)


def _case_row(case: dict[str, Any]) -> str:
    channels = sorted({claim["channel"] for claim in case.get("claims", [])})
    handler = case["handler"]["name_zh"] if case["handler"] else ""
    return (
        f'<tr data-case="{escape(case["id"])}" data-workers="{case["workers"]}"><td>{_urgency(case)}</td>'
        f"<td>{escape(case['enterprise_id'])}</td><td>{escape(case['type_zh'])} {escape(case['type'])}</td>"
        f'<td class="claimants">{case["claimants"]}</td><td class="workers">{case["workers"]}</td>'
        f"<td>{case['amount_cny']:,.0f}</td><td>{escape(', '.join(channels))}</td>"
        f"<td>{escape(STATE_NAMES[case['state']])}</td><td>{escape(handler)}</td>"
        f"<td>{escape(case['district'] or '')}</td><td>{_time(case['opened_at'])}</td>"
        f"<td>{_time(case['due_at'])}</td></tr>"
    )


def render_queue(page: dict[str, Any], *, policy: ClaimsPolicy, query: dict[str, str]) -> str:
    counts = " · ".join(f"{STATE_NAMES[s]} {page['counts'].get(s, 0)}" for s in STATES)
    rows = "".join(_case_row(case) for case in page["items"])
    return (
        HEAD.format(title="职工诉求 Workers' claims")
        + f"""
<body><header><h1>职工诉求一张网 Workers' claims</h1>
<p>{counts} · <a href="/claims/figures">统计 figures</a> · <a href="/v1/claims/">JSON</a></p></header>
<main>{_filters(policy, query)}
<p id="total">共 <b>{page["total"]}</b> 件 cases (most urgent first: injuries, then mass arrears)</p>
<table id="queue"><tr><th>紧急 urgent</th><th>企业 enterprise</th><th>类型 type</th><th>诉求人 claimants</th>
<th>涉及人数 workers</th><th>金额 CNY</th><th>渠道 channels</th><th>状态 state</th><th>承办 handler</th>
<th>区 district</th><th>受理 opened</th><th>期限 due</th></tr>{rows}</table></main></body></html>"""
    )


def _rate_chart(title: str, entries: list[dict[str, Any]], field: str, *, chart_id: str) -> str:
    """Rates as whole percents on the shared bar chart."""
    bars = [(entry["key"], round((entry[field] or 0) * 100)) for entry in entries[:12]]
    return bar_chart(title, bars, chart_id=chart_id)


def weekly_chart(weeks: list[dict[str, Any]]) -> str:
    """Claims received (left bar) and closed (right bar) per week, oldest on the left."""
    top = max([w["received"] for w in weeks] + [w["closed"] for w in weeks] + [1])
    step, plot = CHART_WIDTH // max(len(weeks), 1), 160
    columns = []
    for index, week in enumerate(weeks):
        x = index * step + 8
        bars = ""
        for offset, name in ((0, "received"), (step // 2 - 4, "closed")):
            height = round(plot * week[name] / top)
            bars += (
                f'<rect class="{name}" x="{x + offset}" y="{plot - height + 10}" width="{step // 2 - 8}" '
                f'height="{height}"><title>{escape(week["week"])} {name}: {week[name]}</title></rect>'
            )
        columns.append(
            f'<g class="week" data-week="{escape(week["week"])}" data-received="{week["received"]}" '
            f'data-closed="{week["closed"]}" data-satisfaction="{_percent(week["satisfaction_rate"])}">{bars}'
            f'<text x="{x}" y="{plot + 28}">{escape(week["week"][-3:])}</text></g>'
        )
    return (
        f'<figure id="weekly"><figcaption>每周受理与办结 Received and closed per week '
        f'<span class="key received">受理 received</span> <span class="key closed">办结 closed</span></figcaption>'
        f'<svg role="img" aria-label="weekly trend" viewBox="0 0 {CHART_WIDTH} {plot + 36}" width="{CHART_WIDTH}" '
        f'height="{plot + 36}">{"".join(columns)}</svg></figure>'
    )


def breakdown_table(name: str, entries: list[dict[str, Any]]) -> str:
    head = (
        f"<tr><th>{escape(DIMENSION_NAMES[name])}</th><th>诉求 claims</th><th>办结 closed</th>"
        "<th>办结率 closing rate</th>"
        "<th>办结天数中位数 median days</th><th>评价 ratings</th><th>满意率 satisfaction</th></tr>"
    )
    body = "".join(
        f'<tr data-key="{escape(e["key"])}"><td>{escape(e["key"])}</td><td>{e["claims"]}</td><td>{e["closed"]}</td>'
        f'<td class="closing">{_percent(e["closing_rate"])}</td>'
        f"<td>{'' if e['median_days_to_close'] is None else e['median_days_to_close']}</td><td>{e['ratings']}</td>"
        f'<td class="satisfaction">{_percent(e["satisfaction_rate"])}</td></tr>'
        for e in entries
    )
    return f'<table id="by-{escape(name)}"><caption>按{escape(DIMENSION_NAMES[name])}</caption>{head}{body}</table>'


def render_figures(figures: dict[str, Any], *, stale: bool = False) -> str:
    median, cases = figures["median_days_to_close"], figures["cases"]
    tiles = (
        f'<ul id="tiles"><li>诉求 claims <b id="claims">{figures["claims"]}</b></li>'
        f'<li>办结率 closing rate <b id="closing-rate">{_percent(figures["closing_rate"])}</b></li>'
        f'<li>满意率 satisfaction <b id="satisfaction-rate">{_percent(figures["satisfaction_rate"])}</b>'
        f" ({figures['ratings']} 评价 ratings)</li>"
        f'<li>办结天数中位数 median days to close <b id="median">{"–" if median is None else median}</b></li>'
        f'<li>案件 cases <b id="cases">{cases["total"]}</b> 超期 overdue {cases["overdue"]} · '
        f"群体 mass {cases['mass']}</li></ul>"
    )
    charts = (
        _rate_chart(
            "各渠道办结率 Closing rate by channel (%)",
            figures["by"]["channel"],
            "closing_rate",
            chart_id="closing-by-channel",
        )
        + _rate_chart(
            "各类型满意率 Satisfaction by type (%)",
            figures["by"]["type"],
            "satisfaction_rate",
            chart_id="satisfaction-by-type",
        )
        + weekly_chart(figures["weekly"])
    )
    tables = "".join(breakdown_table(name, entries[:50]) for name, entries in figures["by"].items())
    return (
        HEAD.format(title="诉求统计 Claims figures")
        + f"""
<body><header><h1>诉求统计 Claims figures</h1>
<p>截至 as of {_time(figures["generated_at"])} · <a href="/claims/">队列 queue</a> ·
<a href="/v1/claims/figures">JSON</a> ·
<a href="/v1/claims/figures.csv">CSV</a>{STALE if stale else ""}</p>
<p>办结率 = 已办结诉求 / 诉求 (closed claims / claims);
满意率 = 4–5 分评价 / 评价 (ratings of 4 or 5 / ratings)</p></header>
<main>{tiles}<div class="charts">{charts}</div><div class="tables">{tables}</div></main></body></html>"""
    )
