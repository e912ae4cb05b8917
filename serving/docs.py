"""The API's documentation at /docs: Swagger UI from the `swagger-ui-bundle` package, served from
this host only (no CDN, fonts or analytics: officers' browsers call no third party), over the
document at /docs.json (`build_spec`). `/` redirects to /docs.

The document is generated: the route apps' operations come from their FastAPI routers (path,
role dependency, answer model, errors, summary: serving/*/app.py), BentoML's endpoints from
BentoML's own document plus each endpoint's `@documented(...)` (serving/service.py). Here they
are merged and given what every route shares: security by role, 401/403, Retry-After on 503,
tags, and OpenAPI 3.0's dialect (`nullable`), which Swagger UI and schemathesis both read."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import swagger_ui_bundle

from serving.errors import error_json
from serving.openapi_document import build_spec

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

ASSETS_DIR = Path(swagger_ui_bundle.swagger_ui_path)
ASSETS = {
    "swagger-ui.css": b"text/css; charset=utf-8",
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "favicon-32x32.png": b"image/png",
}
DOCS_PATHS = ("/", "/docs", "/docs.json", "/docs/ankang.js")
# Only this host, for everything; Swagger UI sets inline styles and shows data: images.
CSP = (
    b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

PAGE = b"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <title>Ankang API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/ankang.js"></script>
</body>
</html>
"""
# validatorUrl null: Swagger UI would otherwise send the document to an outside validator for a badge.
INITIALIZER = b"""window.ui = SwaggerUIBundle({
  url: "/docs.json", dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
  validatorUrl: null, persistAuthorization: false, tryItOutEnabled: false,
  presets: [SwaggerUIBundle.presets.apis]
});
"""


@functools.lru_cache(maxsize=len(ASSETS))
def _asset_bytes(name: str) -> bytes:
    return (ASSETS_DIR / name).read_bytes()


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, extra: list | None = None, *, cache: bytes = b"no-cache"
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"content-security-policy", CSP),
        (b"cache-control", cache),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ApiDocs:
    """Answers GET /, /docs, /docs.json and the page's assets; passes everything else on."""

    def __init__(self, app: Callable, *, service: Any):
        self.app = app
        self.service = service
        self._spec: bytes | None = None

    @property
    def spec(self) -> bytes:
        if self._spec is None:  # built on first use: every route and model is known by then
            self._spec = json.dumps(build_spec(self.service), ensure_ascii=False).encode("utf-8")
        return self._spec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope.get("method") not in ("GET", "HEAD")
            or not (path in DOCS_PATHS or path in ("/docs/",) or path.startswith("/docs/assets/"))
        ):
            await self.app(scope, receive, send)
            return
        if path == "/":
            await _respond(send, 307, b"", b"text/plain", [(b"location", b"/docs")])
        elif path in ("/docs", "/docs/"):
            await _respond(send, 200, PAGE, b"text/html; charset=utf-8")
        elif path == "/docs.json":
            await _respond(send, 200, self.spec, b"application/json")
        elif path == "/docs/ankang.js":
            await _respond(send, 200, INITIALIZER, b"text/javascript; charset=utf-8")
        else:
            await self._asset(path.removeprefix("/docs/assets/"), send)

    async def _asset(self, name: str, send: Send) -> None:
        if name not in ASSETS:
            body = error_json("path", f"no documentation asset {name!r}")
            await _respond(send, 404, body, b"application/json")
            return
        await _respond(send, 200, _asset_bytes(name), ASSETS[name], cache=b"public, max-age=86400")
