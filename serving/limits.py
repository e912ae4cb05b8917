"""ASGI middleware that refuses oversized request bodies before they are read into memory or disk."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from serving.errors import error_json

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _send_413(send: Send, limit: int) -> None:
    body = error_json("body", f"the request body exceeds {limit} bytes; send a smaller file")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Rejects a body over its path's limit: at once by Content-Length, else while it streams in."""

    def __init__(self, app: Callable, *, default_limit: int, path_limits: dict[str, int] | None = None):
        self.app = app
        self.default_limit = default_limit
        self.path_limits = path_limits or {}

    def limit_for(self, path: str) -> int:
        return self.path_limits.get(path, self.default_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_413(send, limit)
            return
        app_send = _SuppressedSend(send)
        await self.app(scope, _LimitedReceive(receive, app_send, limit), app_send)


class _SuppressedSend:
    """Forwards the app's messages until the limit has answered 413 in its place."""

    def __init__(self, send: Send):
        self.send = send
        self.replaced = False

    async def __call__(self, message: Message) -> None:
        if not self.replaced:
            await self.send(message)


class _LimitedReceive:
    """Counts body bytes; past the limit it answers 413 and tells the app the client left."""

    def __init__(self, receive: Receive, app_send: _SuppressedSend, limit: int):
        self.receive, self.app_send, self.limit = receive, app_send, limit
        self.received = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        self.received += len(message.get("body", b""))
        if self.received <= self.limit:
            return message
        if not self.app_send.replaced:
            self.app_send.replaced = True
            await _send_413(self.app_send.send, self.limit)
        return {"type": "http.disconnect"}
