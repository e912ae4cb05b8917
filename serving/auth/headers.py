"""Security headers on every response."""

from __future__ import annotations

from collections.abc import Callable

from serving.auth.asgi import Message, Receive, Scope, Send

# same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` on same-origin form
# and fetch POSTs, which an origin check cannot tell from a sandboxed attacker. Nothing (photo URLs
# included) is sent to another origin either way.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


# The pages (/review, /orders, /claims) load their own script, style and images only, and run no
# inline script or style: anything injected into a page has nowhere to load from and cannot run.
PAGE_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    b"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
RETRY_AFTER_429 = b"60"  # every throttle here counts over a minute or more
NO_STORE_PREFIXES = ("/v1/reports",)  # a receipt's answers, found or not, stay out of every cache


def extra_headers(path: str, status: int, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers with the security ones added: the fixed set, a CSP on HTML pages that
    set none, Retry-After on a 429 without one, no-store under /v1/reports."""
    present = {name.lower() for name, _ in headers}
    extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    if content_type.startswith(b"text/html") and b"content-security-policy" not in present:
        extra.append((b"content-security-policy", PAGE_CSP))
    if status == 429 and b"retry-after" not in present:
        extra.append((b"retry-after", RETRY_AFTER_429))
    if path.startswith(NO_STORE_PREFIXES):
        headers = [(name, value) for name, value in headers if name.lower() != b"cache-control"]
        extra.append((b"cache-control", b"no-store"))
    return [*headers, *extra]


class SecurityHeaders:
    """Adds nosniff, a same-origin referrer policy and no-framing to every response, and the rules of
    `extra_headers` (issue 21: page CSP, Retry-After on 429, no-store for receipts)."""

    def __init__(self, app: Callable):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                message = {**message, "headers": extra_headers(scope.get("path", ""), message["status"], headers)}
            await send(message)

        await self.app(scope, receive, send_with_headers)
