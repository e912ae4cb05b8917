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


class SecurityHeaders:
    """Adds nosniff, a same-origin referrer policy and no-framing to every response."""

    def __init__(self, app: Callable):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
