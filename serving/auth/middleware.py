"""`ApiKeyAuth`: a pure ASGI middleware checking each request's key or review-page session
against the role its path needs.

With no key configured the service still starts (health, metrics and docs stay open) but denies
every protected request with 401 and says how to create a key; no key is built in. With
`ServingSettings.auth` off (ANKANG_AUTH=off, for the in-process test fixture only) every request
passes as the `anonymous` admin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from runtime.errors import InputError
from serving.auth.asgi import Receive, Scope, Send, cookies, header, respond
from serving.auth.keys import KeyStore, Principal
from serving.auth.revocations import SessionRevocations
from serving.auth.roles import required_role, role_allows
from serving.auth.sessions import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, SessionSigner
from serving.auth.sign_in import (
    ENTERPRISE_HOME,
    SIGN_IN_PATH,
    SIGN_IN_PATHS,
    SIGN_OUT_PATHS,
    FailureLimiter,
    SignIn,
    cross_origin,
    safe_next,
)
from serving.errors import error_json
from serving.logging_setup import configure_logging
from serving.outages import OUTAGE_TYPES, outage_of, outage_response
from serving.settings import ServingSettings

# Wrong API keys a client may send per window (keys are long random secrets: this is about noise and
# about weak development keys, counted per client address like failed sign-ins).
KEY_FAILURE_LIMIT, KEY_FAILURE_WINDOW = 20, 600.0
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANONYMOUS = Principal("anonymous", "admin", via="none")

log = logging.getLogger("ankang.auth")


@dataclass
class _Denial:
    status: int
    message: str
    field: str = "authorization"

    async def send(self, send: Send) -> None:
        body = error_json(self.field, self.message)
        headers = [(b"www-authenticate", b'Bearer realm="ankang"')] if self.status == 401 else []
        if self.status == 429:
            headers.append((b"retry-after", str(int(KEY_FAILURE_WINDOW)).encode()))
        await respond(send, self.status, body, b"application/json", headers)


def presented_key(scope: Scope) -> str | None:
    """The API key sent as `Authorization: Bearer KEY` or `X-API-Key: KEY`, if any."""
    authorization = header(scope, b"authorization")
    if authorization:
        parts = authorization.split(None, 1)
        return parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else ""
    api_key = header(scope, b"x-api-key")
    return api_key.strip() if api_key is not None else None


class ApiKeyAuth:
    """Checks every request's key (or review-page session) against the role its path needs.

    `settings` are the service's (read once at start-up, serving/service.py); `keys` and `signer`
    override what the settings would build.
    """

    def __init__(
        self,
        app: Callable,
        *,
        settings: ServingSettings,
        keys: KeyStore | None = None,
        signer: SessionSigner | None = None,
    ):
        self.app = app
        configure_logging()  # Starlette builds inner middleware first: RequestLog has not configured it yet
        self.configure(settings, keys=keys, signer=signer)

    def configure(
        self, settings: ServingSettings, *, keys: KeyStore | None = None, signer: SessionSigner | None = None
    ) -> None:
        """Take these settings from the next request on (a test reconfigures the one app of its process)."""
        self.settings, self.enabled = settings, settings.auth
        self.keys = keys or KeyStore.from_settings(settings)
        self.signer = signer or SessionSigner.from_settings(settings)
        self.revocations = SessionRevocations(settings.resolved_database_url)
        self.key_failures = FailureLimiter(
            limit=KEY_FAILURE_LIMIT,
            window=KEY_FAILURE_WINDOW,
            redis_url=settings.redis_url,
            prefix="ankang:key-failures",
        )
        self.sign_in = SignIn(
            keys=self.keys, signer=self.signer, secure_cookies=settings.secure_cookies, redis_url=settings.redis_url
        )
        self._log_startup()

    def _log_startup(self) -> None:
        if not self.enabled:
            log.warning("auth_disabled", extra={"hint": "ANKANG_AUTH=off is for tests only; every endpoint is open"})
        elif not self.keys.has_keys():
            log.warning(
                "no_api_keys",
                extra={
                    "hint": "every protected request is denied; run `ankang keys create "
                    "--role intake` (or --role reviewer --holder NAME)"
                },
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if not self.enabled:
            scope["ankang.principal"] = ANONYMOUS
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and path in SIGN_IN_PATHS + SIGN_OUT_PATHS:
            try:
                await (self.sign_in(scope, receive, send) if path in SIGN_IN_PATHS else self._sign_out(scope, send))
            except OUTAGE_TYPES as error:  # Redis (the failure counts) or the database (sign-outs) is away
                backend = outage_of(error)
                if backend is None:
                    raise
                await outage_response(backend)(scope, receive, send)
            return
        needed = required_role(path)
        if needed is None:
            await self.app(scope, receive, send)
            return
        principal, denial = self._authorise(scope, needed)
        if denial is not None:
            await self._deny(scope, send, denial)
            return
        scope["ankang.principal"] = principal
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _authorise(self, scope: Scope, needed: str) -> tuple[Principal | None, _Denial | None]:
        if not self.keys.has_keys() and self.keys.unreadable:
            return None, _Denial(503, "the API key database cannot be read right now; retry in a few seconds")
        if not self.keys.has_keys():
            return None, _Denial(
                401,
                "no API keys are configured on this server; an operator must create one "
                "with `ankang keys create --role ROLE`",
            )
        # Pages' sessions reach the routes of the roles that have pages (the review and order APIs
        # the pages call, the dashboard's JSON and CSV); intake and admin routes take keys only.
        principal, denial = self._identify(scope, sessions=needed in ("reviewer", "enterprise"))
        if denial is not None:
            return None, denial
        if not role_allows(principal.role, needed):
            if principal.via == "session":
                scope["ankang.session_role"] = principal.role
            return None, _Denial(
                403, f"this key has role '{principal.role}'; {scope.get('path')} needs role '{needed}'"
            )
        return principal, None

    def _identify(self, scope: Scope, *, sessions: bool) -> tuple[Principal | None, _Denial | None]:
        """By API key header; by a page session cookie only on the paths pages use."""
        key = presented_key(scope)
        if key is not None:
            return self._by_key(key, client=str((scope.get("client") or ("unknown", 0))[0]))
        cookie = cookies(scope).get(SESSION_COOKIE) if sessions else None
        if cookie is None:
            return None, _Denial(
                401, "send an API key as `Authorization: Bearer KEY` or `X-API-Key: KEY`, or sign in at /sign-in"
            )
        claims = self.signer.verify(cookie)
        if claims and self.revocations.is_revoked(str(claims.get("sid"))):
            claims = None  # signed out (on this replica or another)
        record = self.keys.find(str(claims.get("kid"))) if claims else None
        if record is None:
            return None, _Denial(401, "the session has expired or its key was revoked; sign in again at /sign-in")
        if scope.get("method", "GET") in UNSAFE_METHODS:
            if cross_origin(scope):
                return None, _Denial(403, "cross-origin request refused", field="csrf")
            if not self.signer.csrf_ok(claims, header(scope, CSRF_HEADER.encode())):
                return None, _Denial(
                    403,
                    f"the {CSRF_HEADER} header is missing or wrong; send the value of "
                    f"the {CSRF_COOKIE} cookie, or reload the review page",
                    field="csrf",
                )
        scope["ankang.session"], scope["ankang.signer"] = claims, self.signer
        principal = Principal(
            record.key_id, record.role, via="session", holder=record.holder, enterprise_id=record.enterprise_id or None
        )
        return principal, None

    def _by_key(self, key: str, *, client: str) -> tuple[Principal | None, _Denial | None]:
        """The key's principal; wrong keys count against the client like failed sign-ins, and a client
        past the limit is refused (429) before its next guess is even checked."""
        if self.key_failures.blocked(client):
            return None, _Denial(
                429, f"too many wrong API keys from this address; wait {KEY_FAILURE_WINDOW // 60:.0f} minutes"
            )
        principal = self.keys.authenticate(key) if key else None
        if principal is None:
            self.key_failures.fail(client)
            return None, _Denial(401, "the API key is not valid")
        return principal, None

    async def _sign_out(self, scope: Scope, send: Send) -> None:
        """End the session for good (every replica refuses its cookie from now on), then clear the
        cookies. Another site may not sign a reviewer out: the origin is checked like sign-in's."""
        if cross_origin(scope):
            await self._deny(scope, send, _Denial(403, "cross-origin sign-out refused", field="csrf"))
            return
        claims = self.signer.verify(cookies(scope).get(SESSION_COOKIE) or "")
        if claims and claims.get("sid"):
            self.revocations.revoke(str(claims["sid"]), expires=float(claims["exp"]))
            log.info("signed_out", extra={"key_id": claims.get("kid")})
        await self.sign_in.sign_out(send)

    async def _deny(self, scope: Scope, send: Send, denial: _Denial) -> None:
        log.info("access_denied", extra={"status": denial.status, "path": scope.get("path"), "reason": denial.message})
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path, accept = scope.get("path", ""), header(scope, b"accept") or ""
        pages = ("/review", "/orders", "/unions", "/claims")
        wants_page = scope.get("method") == "GET" and path.startswith(pages) and "text/html" in accept
        if denial.status == 403 and wants_page and scope.get("ankang.session_role") == "enterprise":
            # an enterprise signed in and opened an officers' page: its own orders instead of a JSON error
            await respond(send, 303, b"", b"text/plain", [(b"location", ENTERPRISE_HOME.encode())])
            return
        if denial.status == 401 and scope.get("method") == "GET" and path.startswith(pages) and "text/html" in accept:
            query = scope.get("query_string", b"").decode("latin-1")
            back = safe_next(f"{path}?{query}" if query else path)
            location = f"{SIGN_IN_PATH}?{urlencode({'next': back}, safe='/')}".encode()
            await respond(send, 303, b"", b"text/plain", [(b"location", location)])
            return
        await denial.send(send)


def require_role(request: Any, role: str) -> Principal:
    """The request's principal if it may act as `role`; else raise InputError (401 or 403).

    For handlers that want a second check behind `ApiKeyAuth` (which already enforces roles by
    path, and marks every request as the anonymous admin when auth is off).
    """
    principal = request.scope.get("ankang.principal")
    if principal is None:
        raise InputError("authorization", "send an API key (Authorization: Bearer KEY or X-API-Key)", status_code=401)
    if not role_allows(principal.role, role):
        raise InputError(
            "authorization", f"this key has role '{principal.role}'; this needs role '{role}'", status_code=403
        )
    return principal
