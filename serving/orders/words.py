"""What the order pages say: Chinese first with English beside it, hazard names from the taxonomy, times
as `<time>` elements that local-time.js shows in the reader's own zone (UTC until the script runs)."""

from __future__ import annotations

import datetime as dt
from html import escape

from runtime.taxonomy import load_taxonomy

STATE_NAMES = {
    "open": ("待整改", "open"),
    "in_progress": ("整改中", "in progress"),
    "submitted": ("待复查", "submitted"),
    "verified": ("已复查", "verified"),
    "closed": ("已闭环", "closed"),
}
ACTION_NAMES = {
    "create": ("下达整改单", "issued"),
    "start": ("开始整改", "started"),
    "submit": ("提交整改照片", "proof submitted"),
    "verify": ("复查通过", "verified"),
    "reject": ("退回整改", "rejected"),
    "close": ("闭环", "closed"),
    "amend": ("修改", "amended"),
    "escalate": ("升级督办", "escalated"),
}
BUTTON_NAMES = {  # what a button says: the action to take (ACTION_NAMES say what was done)
    "start": ("开始整改", "Start"),
    "submit": ("提交整改照片", "Submit the proof"),
    "verify": ("复查通过", "Verify"),
    "reject": ("退回整改", "Reject"),
    "close": ("闭环", "Close"),
}
SEVERITY_NAMES = {"疑似重大": "suspected major", "一般": "general"}
KIND_NAMES = {"rectification": ("整改单", "rectification order"), "supervision": ("督办", "supervision case")}


def both(pair: tuple[str, str]) -> str:
    """`中文 <span class="en">English</span>`, escaped."""
    return f'{escape(pair[0])} <span class="en">{escape(pair[1])}</span>'


def state_name(state: str) -> str:
    return both(STATE_NAMES.get(state, (state, state)))


def action_name(action: str) -> str:
    return both(ACTION_NAMES.get(action, (action, action)))


def button_name(action: str) -> str:
    return both(BUTTON_NAMES.get(action, (action, action)))


def actor_name(actor: str) -> str:
    """A transition's actor as stored (`enterprise:ID [key:..]`, `NAME [key:..]`, `system`), said in Chinese."""
    if actor.startswith("enterprise:"):
        return f"企业 {escape(actor.removeprefix('enterprise:'))}"
    if actor == "system":
        return both(("系统", "system"))
    return escape(actor)


def severity_name(severity: str | None) -> str:
    if not severity:
        return ""
    return both((severity, SEVERITY_NAMES.get(severity, severity)))


def hazard_name(hazard: str | None) -> str:
    """The taxonomy's Chinese and English names of a hazard id (the id itself when unknown)."""
    if not hazard:
        return "—"
    known = load_taxonomy().get(hazard)
    return both((known.name_zh, known.name_en)) if known else escape(hazard)


def when(iso: str | None, *, empty: str = "—") -> str:
    """A UTC ISO time as a `<time>` element: local-time.js rewrites it in the browser's zone."""
    if not iso:
        return empty
    try:
        moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return escape(iso)
    return f'<time class="local" datetime="{escape(iso)}">{moment:%Y-%m-%d %H:%M} UTC</time>'


def due_in(due_at: str | None, *, now: dt.datetime | None = None) -> str:
    """How long is left until a due time, or how long it is overdue, in hours or days."""
    if not due_at:
        return ""
    due = dt.datetime.fromisoformat(due_at.replace("Z", "+00:00")).replace(tzinfo=None)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    hours = (due - now).total_seconds() / 3600
    span = f"{abs(hours):.0f} 小时 h" if abs(hours) < 48 else f"{abs(hours) / 24:.0f} 天 days"
    return f"剩余 {span} left" if hours >= 0 else f"已逾期 {span} overdue"


def page(title: str, body: str, *, scripts: tuple[str, ...] = (), nav: str = "") -> str:
    """The frame of every order page: title, stylesheet, favicon, the navigation and its scripts."""
    tags = "".join(
        f'<script src="/orders/static/{name}" defer></script>' for name in ("local-time.js", "common.js", *scripts)
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>安康 · {escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/orders/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/orders/static/orders.css">{tags}</head>
<body>{nav}{body}</body></html>"""


def navigation(*, officer: bool, who: str = "") -> str:
    """Links between the pages a role has, who is signed in, and sign-out."""
    links = (
        '<a href="/review">复核队列 <span class="en">Review queue</span></a>'
        '<a href="/orders/">整改看板 <span class="en">Dashboard</span></a>'
        if officer
        else '<a href="/orders/">本企业整改单 <span class="en">Our orders</span></a>'
    )
    signed_in = f'<span class="who">{escape(who)}</span>' if who else ""
    return (
        f'<nav class="site">{links}{signed_in}<form method="post" action="/sign-out">'
        f'<button type="submit" id="sign-out">退出 <span class="en">Sign out</span></button></form></nav>'
    )
