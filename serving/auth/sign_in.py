"""One sign-in page for every role with pages, and sign-out: an HTML form, answered in HTML whatever goes
wrong. Each role lands on its home: officers (reviewer, admin) on the review queue, an enterprise on its
own rectification orders; an intake key is told that intake keys have no pages."""

from __future__ import annotations

import html
import logging
import re
from urllib.parse import parse_qs, urlsplit

from serving.auth.asgi import Receive, Scope, Send, cookies, header, read_body, respond
from serving.auth.keys import KeyStore
from serving.auth.roles import role_allows
from serving.auth.sessions import SIGN_IN_COOKIE, SessionSigner, cleared_cookies, session_cookies, sign_in_form_cookie
from serving.windows import windows

SIGN_IN_PATH, SIGN_OUT_PATH = "/sign-in", "/sign-out"
# The first sign-in lived under /review; old bookmarks and scripts keep working there.
SIGN_IN_PATHS, SIGN_OUT_PATHS = (SIGN_IN_PATH, "/review/sign-in"), (SIGN_OUT_PATH, "/review/sign-out")
OFFICER_HOME, ENTERPRISE_HOME = "/review", "/orders/"
MAX_SIGN_IN_BODY = 4096
# The form needs nothing but its own inline style: no script runs on it, nothing loads from elsewhere.
CSP = b"default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'"

log = logging.getLogger("ankang.auth")

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>安康 · 登录 Sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,"></head>
<body style="font-family: system-ui, 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', sans-serif; max-width: 30rem;
 margin: 4rem auto; padding: 0 1rem; color: #1d2330">
<h1>安康 登录 <small style="color: #667085; font-weight: 400">Sign in</small></h1>{message}
<form method="post" action="{action}">
<label>密钥 API key<br><input type="password" name="key" autocomplete="off" required size="48"
 style="width: 100%; padding: .4rem; font: inherit"></label>
<input type="hidden" name="next" value="{next}"><input type="hidden" name="csrf" value="{token}">
<p><button type="submit" style="padding: .4rem 1.2rem; font: inherit">登录 Sign in</button></p></form>
<ul style="color: #667085; font-size: .9rem; padding-left: 1.2rem">
<li>工会安全员（复核人）：登录后进入隐患复核队列。 Union safety officers (reviewer keys) land on the review queue.</li>
<li>企业：登录后查看本企业的整改单。 Enterprises (enterprise keys) land on their own rectification orders.</li>
<li>密钥由管理员创建 Keys are created by an administrator:
<code>ankang keys create --role reviewer --holder 姓名</code> ·
<code>ankang keys create --role enterprise --enterprise-id 企业编号</code></li></ul>
</body></html>"""


def safe_next(value: str) -> str:
    """Only local review, order and claims pages (with their filters): an open redirect would let a phishing
    link borrow our sign-in page."""
    path, _, query = (value or "").partition("?")
    ok = (
        re.fullmatch(r"/(review|orders|unions|claims)(/[A-Za-z0-9/_.-]*)?", path)
        and "//" not in path
        and ".." not in path
        and re.fullmatch(r"[A-Za-z0-9_.~%&=+-]*", query)
    )
    return value if ok else OFFICER_HOME


def landing(role: str, next_path: str) -> str | None:
    """Where a signed-in role goes: the page it came from when that role may use it, else its home;
    None for a role that has no pages (intake)."""
    if role == "enterprise":
        return next_path if next_path.startswith("/orders") else ENTERPRISE_HOME
    if role_allows(role, "reviewer"):
        return next_path
    return None


def cross_origin(scope: Scope) -> bool:
    """True when the browser says the request comes from another site. No Origin (non-browser
    clients) and `Origin: null` (privacy-preserving browsers) say nothing: the CSRF token decides."""
    origin = header(scope, b"origin")
    if origin is None or origin == "null":
        return False
    return urlsplit(origin).netloc != (header(scope, b"host") or "")


class FailureLimiter:
    """At most `limit` failed sign-ins per client address in a sliding `window` of seconds, counted in
    `windows` (shared by the replicas when they share Redis; this process's own memory by default).

    Keys are long random secrets, so this is about noise and weak development keys; behind a
    reverse proxy every client shares the proxy's address, so keep the limit generous.
    """

    def __init__(
        self,
        *,
        limit: int = 20,
        window: float = 600.0,
        max_clients: int = 10_000,
        redis_url: str | None = None,
        prefix: str = "ankang:sign-in-failures",
    ):
        self.limit = limit
        self.windows = windows(redis_url, prefix=prefix, window=window, max_keys=max_clients)

    def blocked(self, client: str, *, now: float | None = None) -> bool:
        return self.windows.count(client, now=now) >= self.limit

    def fail(self, client: str, *, now: float | None = None) -> None:
        self.windows.record(client, now=now)


def _client(scope: Scope) -> str:
    return str((scope.get("client") or ("unknown", 0))[0])


class SignIn:
    """GET shows the form, POST checks the form's token and the key, then starts a session."""

    def __init__(self, *, keys: KeyStore, signer: SessionSigner, secure_cookies: bool, redis_url: str | None = None):
        self.keys, self.signer, self.secure_cookies = keys, signer, secure_cookies
        self.limiter = FailureLimiter(redis_url=redis_url)

    def _secure(self, scope: Scope) -> bool:
        return scope.get("scheme") == "https" or self.secure_cookies

    async def page(self, scope: Scope, send: Send, status: int, *, next_path: str, message: str = "") -> None:
        """The form with a fresh nonce cookie and token; `message` says why the last attempt failed."""
        cookie, token = sign_in_form_cookie(self.signer, secure=self._secure(scope))
        notice = f'<p role="alert" style="color: #b00">{html.escape(message)}</p>' if message else ""
        action = scope.get("path") if scope.get("path") in SIGN_IN_PATHS else SIGN_IN_PATH
        body = _PAGE.format(message=notice, action=action, next=html.escape(next_path), token=token).encode("utf-8")
        await respond(
            send,
            status,
            body,
            b"text/html; charset=utf-8",
            [(b"set-cookie", cookie.encode()), (b"x-frame-options", b"DENY"), (b"content-security-policy", CSP)],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") in ("GET", "HEAD"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            await self.page(scope, send, 200, next_path=safe_next(query.get("next", [""])[0]))
            return
        if scope.get("method") != "POST":
            await self.page(scope, send, 405, next_path=OFFICER_HOME, message="请用登录表单 Sign in with this form.")
            return
        body = await read_body(receive, MAX_SIGN_IN_BODY)
        form = parse_qs((body or b"").decode("utf-8", errors="replace"))
        next_path = safe_next(form.get("next", [""])[0])
        refusal = self._refusal(scope, form)
        if refusal is not None:
            status, message = refusal
            log.info("sign_in_failed", extra={"path": SIGN_IN_PATH, "status": status, "reason": message})
            await self.page(scope, send, status, next_path=next_path, message=message)
            return
        principal = self.keys.authenticate(form.get("key", [""])[0].strip())
        if principal is None:
            self.limiter.fail(_client(scope))
            log.info("sign_in_failed", extra={"path": SIGN_IN_PATH, "status": 401, "reason": "not a valid key"})
            await self.page(
                scope, send, 401, next_path=next_path, message="这不是有效的密钥。 That is not a valid key."
            )
            return
        target = landing(principal.role, next_path)
        if target is None:
            log.info("sign_in_failed", extra={"path": SIGN_IN_PATH, "status": 403, "reason": "a role without pages"})
            await self.page(
                scope,
                send,
                403,
                next_path=next_path,
                message=f"{principal.role} 密钥用于系统接入，没有页面；请用复核人密钥或企业密钥登录。 "
                f"{principal.role.capitalize()} keys are for machines (photo intake, enterprise scoring) and have "
                "no pages; sign in with a reviewer key (union officers) or an enterprise key.",
            )
            return
        log.info("signed_in", extra={"key_id": principal.key_id, "role": principal.role})
        values = session_cookies(self.signer, principal, secure=self._secure(scope))
        await respond(
            send,
            303,
            b"",
            b"text/plain",
            [(b"location", target.encode()), *((b"set-cookie", value.encode()) for value in values)],
        )

    def _refusal(self, scope: Scope, form: dict[str, list[str]]) -> tuple[int, str] | None:
        """Why this POST may not even try a key (status and message), or None."""
        if cross_origin(scope):
            return 403, "请从本站的登录页登录。 Sign in from the sign-in page of this site."
        if not self.signer.sign_in_ok(cookies(scope).get(SIGN_IN_COOKIE), form.get("csrf", [""])[0]):
            return 403, (
                "登录表单已过期，请重试。 This sign-in form has expired or did not come from this site "
                "(cookies must be enabled); try again with this one."
            )
        if self.limiter.blocked(_client(scope)):
            return (
                429,
                "登录失败次数过多，请 10 分钟后再试。 Too many failed sign-ins from this address; wait 10 minutes.",
            )
        if not self.keys.has_keys():
            return 401, (
                "服务器尚未配置密钥。 No API keys are configured on this server; an operator must create one "
                "with `ankang keys create --role reviewer --holder NAME`."
            )
        return None

    async def sign_out(self, send: Send) -> None:
        values = cleared_cookies()
        await respond(
            send,
            303,
            b"",
            b"text/plain",
            [(b"location", SIGN_IN_PATH.encode()), *((b"set-cookie", value.encode()) for value in values)],
        )
