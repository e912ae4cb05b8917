"""Signed review-page sessions, the CSRF token bound to each, and the sign-in form's own token.

The sign-in form is a double submit: GET /sign-in sets a random nonce in an HttpOnly
cookie and puts HMAC(nonce) in the form; the POST must bring both. So a sign-in works whatever
`Origin` a browser sends (Chromium sends `Origin: null` under strict referrer policies) and a
page on another site cannot sign a reviewer in with the attacker's key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from serving.auth.keys import Principal
from serving.auth.secrets import SESSION_SECRET_FILE, server_secret
from serving.settings import ServingSettings

SESSION_COOKIE, CSRF_COOKIE, SIGN_IN_COOKIE, CSRF_HEADER = (
    "ankang_session",
    "ankang_csrf",
    "ankang_sign_in",
    "x-csrf-token",
)
SESSION_SECONDS = 8 * 3600
SIGN_IN_FORM_SECONDS = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Signed, expiring review-page sessions and the CSRF tokens bound to them."""

    def __init__(self, secret: bytes, *, max_age: int = SESSION_SECONDS):
        self.secret, self.max_age = secret, max_age

    @classmethod
    def from_settings(cls, settings: ServingSettings) -> SessionSigner:
        return cls(server_secret(settings.session_secret, settings.data_dir / SESSION_SECRET_FILE))

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self.secret, purpose.encode() + b"\x00" + payload, hashlib.sha256).digest()

    def issue(self, principal: Principal, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.max_age)
        payload = json.dumps(
            {"kid": principal.key_id, "role": principal.role, "sid": secrets.token_hex(16), "exp": expires},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac('session', payload))}"

    def verify(self, cookie: str, *, now: float | None = None) -> dict[str, Any] | None:
        """The session's claims if the cookie is genuine and unexpired, else None."""
        try:
            encoded, signature = cookie.split(".", 1)
            payload = _unb64(encoded)
            if not hmac.compare_digest(_unb64(signature), self._mac("session", payload)):
                return None
            claims = json.loads(payload)
        except (ValueError, TypeError):
            return None
        if not isinstance(claims, dict) or claims.get("exp", 0) < (time.time() if now is None else now):
            return None
        return claims

    def csrf_token(self, claims: dict[str, Any]) -> str:
        return _b64(self._mac("csrf", str(claims["sid"]).encode()))

    def csrf_ok(self, claims: dict[str, Any], token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token, self.csrf_token(claims))

    def sign_in_token(self, nonce: str) -> str:
        return _b64(self._mac("sign-in", nonce.encode()))

    def sign_in_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce) and bool(token) and hmac.compare_digest(token, self.sign_in_token(nonce))


def _flags(secure: bool, *, path: str = "/") -> str:
    return f"Path={path}; SameSite=Strict" + ("; Secure" if secure else "")


def session_cookies(signer: SessionSigner, principal: Principal, *, secure: bool) -> list[str]:
    """Set-Cookie values for a new session: the HttpOnly session and the CSRF token the page echoes;
    the sign-in form's nonce is spent."""
    session = signer.issue(principal)
    csrf = signer.csrf_token(signer.verify(session) or {})
    return [
        f"{SESSION_COOKIE}={session}; {_flags(secure)}; HttpOnly; Max-Age={signer.max_age}",
        f"{CSRF_COOKIE}={csrf}; {_flags(secure)}; Max-Age={signer.max_age}",
        f"{SIGN_IN_COOKIE}=; {_flags(secure, path='/')}; HttpOnly; Max-Age=0",
    ]


def sign_in_form_cookie(signer: SessionSigner, *, secure: bool) -> tuple[str, str]:
    """A fresh sign-in nonce cookie and the token the form carries with it."""
    nonce = secrets.token_urlsafe(24)
    cookie = f"{SIGN_IN_COOKIE}={nonce}; {_flags(secure, path='/')}; HttpOnly; Max-Age={SIGN_IN_FORM_SECONDS}"
    return cookie, signer.sign_in_token(nonce)


def cleared_cookies() -> list[str]:
    return [f"{name}=; Path=/; SameSite=Strict; Max-Age=0" for name in (SESSION_COOKIE, CSRF_COOKIE)]
