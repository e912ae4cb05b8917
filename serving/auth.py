"""API keys, roles, review-page sessions, CSRF tokens and reporter pseudonyms.

Roles: `intake` (photo assessment, enterprise scoring), `reviewer` (review queue, decisions,
the /review page) and `admin` (model reload; may do everything). Keys come from
`ANKANG_API_KEYS` (comma-separated `role:key` pairs, for development and tests) and from the
keys file (`ANKANG_API_KEYS_FILE`, default `var/api_keys.json`), which stores only salted
SHA-256 digests and is written by `ankang keys create --role ROLE`.

`ApiKeyAuth` is a pure ASGI middleware mapping path prefixes to roles. With no key configured
the service still starts (health, metrics and docs stay open) but denies every protected
request with 401 and says how to create a key; no key is built in. `ANKANG_AUTH=off` turns
the checks off and is meant only for the in-process test fixture.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import posixpath
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from runtime.errors import InputError
from serving.logging_setup import configure_logging
from runtime.paths import PROJECT_ROOT

ROLES = ("intake", "reviewer", "admin")
# First match wins; anything else under /v1 is admin-only so a new endpoint is never open by accident.
ROUTE_ROLES: tuple[tuple[str, str], ...] = (
    ("/v1/photos", "intake"),
    ("/v1/enterprises", "intake"),
    ("/v1/review", "reviewer"),
    ("/review", "reviewer"),
    ("/v1/admin", "admin"),
    ("/v1", "admin"),
)
SIGN_IN_PATH, SIGN_OUT_PATH = "/review/sign-in", "/review/sign-out"
SESSION_COOKIE, CSRF_COOKIE, CSRF_HEADER = "ankang_session", "ankang_csrf", "x-csrf-token"
SESSION_SECONDS = 8 * 3600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_PREFIX = "ank"
_KEY_PATTERN = re.compile(r"^ank_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
_MAX_SIGN_IN_BODY = 4096

log = logging.getLogger("ankang.auth")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def data_dir() -> Path:
    """Where the service keeps its state (keys file, generated secrets): `ANKANG_DATA_DIR` or var/."""
    return Path(os.environ.get("ANKANG_DATA_DIR", PROJECT_ROOT / "var"))


def keys_file() -> Path:
    return Path(os.environ.get("ANKANG_API_KEYS_FILE", data_dir() / "api_keys.json"))


def _role_of(path: str) -> str | None:
    for prefix, role in ROUTE_ROLES:
        if path == prefix or path.startswith(prefix + "/"):
            return role
    return None


def required_role(path: str) -> str | None:
    """The role a path needs, or None when it is open (health, metrics, docs).

    Also judged after collapsing slashes and dot segments, as a proxy in front might: when the two
    readings disagree (`//v1/review`, `/review/../v1/admin`) only admin may pass.
    """
    raw = _role_of(path)
    normalised = _role_of(posixpath.normpath("/" + re.sub(r"/+", "/", path).lstrip("/")))
    return raw if raw == normalised else "admin"


def role_allows(role: str, needed: str) -> bool:
    return role == needed or role == "admin"


# --- secrets ------------------------------------------------------------------------------


def _read_or_create_secret(path: Path) -> bytes:
    """A 32-byte secret in `path` (mode 0600), created once; safe when several workers race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker may be between creating and writing the file
            value = path.read_bytes().strip()
            if value:
                return bytes.fromhex(value.decode())
            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty; delete it so the service can generate a new secret") from None
    value = secrets.token_bytes(32)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value.hex())
    return value


SECRET_SETTINGS = {"ANKANG_SESSION_SECRET": "session.key", "ANKANG_PSEUDONYM_KEY": "pseudonym.key"}


def _check_secret_length(env_name: str, value: str, file_name: str) -> None:
    if len(value) < 32:
        raise ValueError(f"{env_name} has {len(value)} characters; use at least 32 random ones "
                         "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`) or unset it "
                         f"so the service generates var/{file_name}")


def check_secret_settings() -> None:
    """Refuse to start on a weak ANKANG_SESSION_SECRET or ANKANG_PSEUDONYM_KEY (not at the first request)."""
    for env_name, file_name in SECRET_SETTINGS.items():
        if os.environ.get(env_name):
            _check_secret_length(env_name, os.environ[env_name], file_name)


def server_secret(env_name: str, file_name: str) -> bytes:
    """The secret from environment variable `env_name`, else from var/`file_name` (generated once)."""
    from_env = os.environ.get(env_name)
    if from_env:
        _check_secret_length(env_name, from_env, file_name)
        return from_env.encode("utf-8")
    return _read_or_create_secret(data_dir() / file_name)


def pseudonymise(reporter: str | None) -> str | None:
    """A stable pseudonym for a reporter's identity: HMAC-SHA256 with the server's pseudonym key.

    The same reporter always maps to the same pseudonym (so repeat reports can be linked), but
    nobody without `ANKANG_PSEUDONYM_KEY` (or var/pseudonym.key) can reverse or test a guess.
    Store and log only the pseudonym, never the reporter text.
    """
    if reporter is None:
        return None
    normalised = unicodedata.normalize("NFKC", reporter).strip()
    if not normalised:
        return None
    key = server_secret("ANKANG_PSEUDONYM_KEY", "pseudonym.key")
    return "rp_" + hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


# --- keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's id (never the key itself) and its role."""

    key_id: str
    role: str
    via: str = "key"  # "key" (header) or "session" (review-page cookie)


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    role: str
    salt: bytes
    digest: bytes
    created: str = ""
    label: str = ""

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.digest, _digest(self.salt, secret))


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("utf-8")).digest()


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role


def parse_env_keys(value: str) -> list[StoredKey]:
    """`role:key,role:key` from ANKANG_API_KEYS, hashed in memory with a per-process salt."""
    keys = []
    for index, pair in enumerate(part.strip() for part in value.split(",") if part.strip()):
        role, separator, secret = pair.partition(":")
        if not separator or not secret:
            raise ValueError(f"ANKANG_API_KEYS entry {index + 1} is not `role:key`")
        salt = secrets.token_bytes(16)
        keys.append(StoredKey(f"env-{index + 1}", _check_role(role.strip()), salt, _digest(salt, secret.strip())))
    return keys


def new_key(*, role: str, label: str = "") -> tuple[str, StoredKey]:
    """A fresh key `ank_<id>_<secret>` and the record to store (salted digest only)."""
    key_id, secret, salt = secrets.token_hex(4), secrets.token_urlsafe(32), secrets.token_bytes(16)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = StoredKey(key_id, _check_role(role), salt, _digest(salt, secret), created, label)
    return f"{KEY_PREFIX}_{key_id}_{secret}", record


def _record_to_json(record: StoredKey) -> dict[str, str]:
    return {"id": record.key_id, "role": record.role, "salt": record.salt.hex(),
            "sha256": record.digest.hex(), "created": record.created, "label": record.label}


def _record_from_json(entry: dict[str, str]) -> StoredKey:
    return StoredKey(entry["id"], _check_role(entry["role"]), bytes.fromhex(entry["salt"]),
                     bytes.fromhex(entry["sha256"]), entry.get("created", ""), entry.get("label", ""))


def read_keys_file(path: Path) -> list[StoredKey]:
    if not path.is_file():
        return []
    document = json.loads(path.read_text(encoding="utf-8"))
    return [_record_from_json(entry) for entry in document.get("keys", [])]


def write_keys_file(path: Path, records: list[StoredKey]) -> None:
    """Replace the keys file atomically (readers never see half a file); mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"keys": [_record_to_json(record) for record in records]}, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def update_keys_file(path: Path, change: Callable[[list[StoredKey]], list[StoredKey]]) -> list[StoredKey]:
    """Read, change and replace the keys file under an exclusive lock, so concurrent
    `ankang keys create` runs cannot drop each other's keys."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = change(read_keys_file(path))
        write_keys_file(path, records)
        return records


class KeyStore:
    """Keys from the environment plus the keys file, which is re-read when it changes on disk."""

    def __init__(self, *, env_keys: list[StoredKey], path: Path):
        self.env_keys, self.path = env_keys, path
        self._file_keys: dict[str, StoredKey] = {}
        self._stamp: tuple[int, int] | None = None

    @classmethod
    def from_env(cls) -> "KeyStore":
        return cls(env_keys=parse_env_keys(os.environ.get("ANKANG_API_KEYS", "")), path=keys_file())

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stat, stamp = None, None
        if stamp != self._stamp:
            if stat is not None and stat.st_mode & 0o022:
                log.warning("keys_file_writable_by_others", extra={
                    "path": str(self.path), "hint": f"anyone who can write it can add a key; chmod 600 {self.path}"})
            try:
                self._file_keys = {record.key_id: record for record in read_keys_file(self.path)}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                # Deny rather than keep old keys: a half-edited file may be someone revoking a key.
                log.error("keys_file_unreadable", extra={"path": str(self.path), "error": str(error),
                                                         "hint": "file keys are ignored until it is fixed"})
                self._file_keys = {}
            self._stamp = stamp

    def has_keys(self) -> bool:
        self._refresh()
        return bool(self.env_keys or self._file_keys)

    def knows(self, key_id: str) -> bool:
        self._refresh()
        return key_id in self._file_keys or any(record.key_id == key_id for record in self.env_keys)

    def authenticate(self, presented: str) -> Principal | None:
        self._refresh()
        match = _KEY_PATTERN.match(presented)
        if match and (record := self._file_keys.get(match.group(1))) and record.matches(match.group(2)):
            return Principal(record.key_id, record.role)
        found = None
        for record in self.env_keys:  # check them all: the time taken does not depend on which matched
            if record.matches(presented) and found is None:
                found = Principal(record.key_id, record.role)
        return found


# --- sessions and CSRF ----------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Signed, expiring review-page sessions and the CSRF token bound to each session."""

    def __init__(self, secret: bytes, *, max_age: int = SESSION_SECONDS):
        self.secret, self.max_age = secret, max_age

    @classmethod
    def from_env(cls) -> "SessionSigner":
        return cls(server_secret("ANKANG_SESSION_SECRET", "session.key"))

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self.secret, purpose.encode() + b"\x00" + payload, hashlib.sha256).digest()

    def issue(self, principal: Principal, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.max_age)
        payload = json.dumps({"kid": principal.key_id, "role": principal.role,
                              "sid": secrets.token_hex(16), "exp": expires}, separators=(",", ":")).encode()
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


def session_cookies(signer: SessionSigner, principal: Principal, *, secure: bool) -> list[str]:
    """Set-Cookie values for a new session: the HttpOnly session and the CSRF token the page echoes."""
    session = signer.issue(principal)
    csrf = signer.csrf_token(signer.verify(session) or {})
    flags = "Path=/; SameSite=Strict" + ("; Secure" if secure else "")
    return [f"{SESSION_COOKIE}={session}; {flags}; HttpOnly; Max-Age={signer.max_age}",
            f"{CSRF_COOKIE}={csrf}; {flags}; Max-Age={signer.max_age}"]


def cleared_cookies() -> list[str]:
    return [f"{name}=; Path=/; SameSite=Strict; Max-Age=0" for name in (SESSION_COOKIE, CSRF_COOKIE)]


def require_role(request: Any, role: str) -> Principal:
    """The request's principal if it may act as `role`; else raise InputError (401 or 403).

    For handlers that want a second check behind `ApiKeyAuth` (which already enforces roles by
    path). With ANKANG_AUTH=off the principal is an `anonymous` admin.
    """
    principal = request.scope.get("ankang.principal")
    if principal is None:
        if not auth_enabled():
            return Principal("anonymous", "admin", via="none")
        raise InputError("authorization", "send an API key (Authorization: Bearer KEY or X-API-Key)",
                         status_code=401)
    if not role_allows(principal.role, role):
        raise InputError("authorization", f"this key has role '{principal.role}'; this needs role '{role}'",
                         status_code=403)
    return principal


def csrf_token_for(request: Any) -> str | None:
    """The CSRF token for the request's review-page session (to embed in a page), or None."""
    claims = request.scope.get("ankang.session")
    signer = request.scope.get("ankang.signer")
    return signer.csrf_token(claims) if claims and signer else None


def verify_csrf(request: Any, token: str | None) -> None:
    """Raise InputError 403 unless `token` is the CSRF token of the request's session."""
    claims = request.scope.get("ankang.session")
    signer = request.scope.get("ankang.signer")
    if claims is None or signer is None or not signer.csrf_ok(claims, token):
        raise InputError("csrf", "the CSRF token is missing or wrong; reload the review page", status_code=403)


def auth_enabled() -> bool:
    value = os.environ.get("ANKANG_AUTH", "on").strip().lower()
    if value not in {"on", "off"}:
        raise ValueError(f"ANKANG_AUTH must be 'on' or 'off', not {value!r}")
    return value == "on"


# --- the middleware -------------------------------------------------------------------------

_SIGN_IN_PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>Ankang review · sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 28rem; margin: 4rem auto">
<h1>安康 review · sign in</h1>{message}
<form method="post" action="/review/sign-in">
<label>Reviewer API key<br><input type="password" name="key" autocomplete="off" required size="48"></label>
<input type="hidden" name="next" value="{next}">
<p><button type="submit">Sign in</button></p></form>
<p>An administrator creates reviewer keys with <code>ankang keys create --role reviewer</code>.</p>
</body></html>"""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _cookies(scope: Scope) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in (_header(scope, b"cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            cookies.setdefault(name, value)
    return cookies


def presented_key(scope: Scope) -> str | None:
    """The API key sent as `Authorization: Bearer KEY` or `X-API-Key: KEY`, if any."""
    authorization = _header(scope, b"authorization")
    if authorization:
        parts = authorization.split(None, 1)
        return parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else ""
    api_key = _header(scope, b"x-api-key")
    return api_key.strip() if api_key is not None else None


def _same_origin(scope: Scope) -> bool:
    origin = _header(scope, b"origin")
    if origin is None:
        return True  # non-browser clients send no Origin; SameSite=Strict already keeps cookies off cross-site requests
    return urlsplit(origin).netloc == (_header(scope, b"host") or "")


@dataclass
class _Denial:
    status: int
    message: str
    field: str = "authorization"

    async def send(self, send: Send) -> None:
        body = json.dumps({"error": {"field": self.field, "message": self.message}}).encode()
        headers = [(b"www-authenticate", b'Bearer realm="ankang"')] if self.status == 401 else []
        await _respond(send, self.status, body, b"application/json", headers)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    head = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        if not message.get("more_body"):
            return b"".join(chunks)


def _safe_next(value: str) -> str:
    """Only local review paths: an open redirect would let a phishing link borrow our sign-in page."""
    return value if re.fullmatch(r"/review(/[A-Za-z0-9/_.-]*)?", value or "") and "//" not in value and ".." not in value else "/review"


class FailureLimiter:
    """At most `limit` failed sign-ins per client address in a sliding `window` of seconds.

    Keys are long random secrets, so this is about noise and weak development keys; behind a
    reverse proxy every client shares the proxy's address, so keep the limit generous.
    """

    def __init__(self, *, limit: int = 20, window: float = 600.0, max_clients: int = 10_000):
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client: str, now: float) -> list[float]:
        recent = [moment for moment in self._failures.get(client, []) if now - moment < self.window]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        return recent

    def blocked(self, client: str, *, now: float | None = None) -> bool:
        return len(self._recent(client, time.monotonic() if now is None else now)) >= self.limit

    def fail(self, client: str, *, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        self._failures[client] = [*self._recent(client, moment), moment]
        if len(self._failures) > self.max_clients:  # many addresses failing: forget the oldest first
            for stale in list(self._failures)[:len(self._failures) - self.max_clients]:
                del self._failures[stale]


def _client(scope: Scope) -> str:
    return str((scope.get("client") or ("unknown", 0))[0])


class ApiKeyAuth:
    """Checks every request's key (or review-page session) against the role its path needs."""

    def __init__(self, app: Callable, *, keys: KeyStore | None = None, signer: SessionSigner | None = None,
                 enabled: bool | None = None):
        self.app = app
        self._fixed = (enabled, keys) if enabled is not None and keys is not None else None
        self._env: tuple[str | None, ...] | None = None
        self._signer = signer
        self.sign_in_limiter = FailureLimiter()
        check_secret_settings()
        self._settings()
        configure_logging()  # Starlette builds inner middleware first: RequestLog has not configured it yet
        self._log_startup()

    def _settings(self) -> tuple[bool, KeyStore]:
        """From the environment, re-read only when it changes (tests switch auth on around one app)."""
        if self._fixed is not None:
            return self._fixed
        env = tuple(os.environ.get(name) for name in
                    ("ANKANG_AUTH", "ANKANG_API_KEYS", "ANKANG_API_KEYS_FILE", "ANKANG_DATA_DIR"))
        if env != self._env:
            self._current = (auth_enabled(), KeyStore.from_env())
            self._env = env
        return self._current

    @property
    def enabled(self) -> bool:
        return self._settings()[0]

    @property
    def keys(self) -> KeyStore:
        return self._settings()[1]

    def _log_startup(self) -> None:
        if not self.enabled:
            log.warning("auth_disabled", extra={"hint": "ANKANG_AUTH=off is for tests only; every endpoint is open"})
        elif not self.keys.has_keys():
            log.warning("no_api_keys", extra={"hint": "every protected request is denied; run "
                                                      "`ankang keys create --role intake` (or reviewer, admin)"})

    @property
    def signer(self) -> SessionSigner:
        if self._signer is None:
            self._signer = SessionSigner.from_env()
        return self._signer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.enabled:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and path in (SIGN_IN_PATH, SIGN_OUT_PATH):
            await (self._sign_in(scope, receive, send) if path == SIGN_IN_PATH else self._sign_out(send))
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
        if not self.keys.has_keys():
            return None, _Denial(401, "no API keys are configured on this server; an operator must create one "
                                      "with `ankang keys create --role ROLE`")
        principal, denial = self._identify(scope, sessions=needed == "reviewer")
        if denial is not None:
            return None, denial
        if not role_allows(principal.role, needed):
            return None, _Denial(403, f"this key has role '{principal.role}'; "
                                      f"{scope.get('path')} needs role '{needed}'")
        return principal, None

    def _identify(self, scope: Scope, *, sessions: bool) -> tuple[Principal | None, _Denial | None]:
        """By API key header; by review-page session cookie only on review paths (sessions are for the page)."""
        key = presented_key(scope)
        if key is not None:
            principal = self.keys.authenticate(key) if key else None
            return (principal, None) if principal else (None, _Denial(401, "the API key is not valid"))
        cookie = _cookies(scope).get(SESSION_COOKIE) if sessions else None
        if cookie is None:
            return None, _Denial(401, "send an API key as `Authorization: Bearer KEY` or `X-API-Key: KEY`, "
                                      "or sign in at /review/sign-in")
        claims = self.signer.verify(cookie)
        if claims is None or not self.keys.knows(str(claims.get("kid"))):
            return None, _Denial(401, "the session has expired or its key was revoked; sign in again at "
                                      "/review/sign-in")
        return self._session_principal(scope, claims)

    def _session_principal(self, scope: Scope, claims: dict[str, Any]) -> tuple[Principal | None, _Denial | None]:
        if scope.get("method", "GET") in UNSAFE_METHODS:
            if not _same_origin(scope):
                return None, _Denial(403, "cross-origin request refused", field="csrf")
            if not self.signer.csrf_ok(claims, _header(scope, CSRF_HEADER.encode())):
                return None, _Denial(403, f"the {CSRF_HEADER} header is missing or wrong; send the value of "
                                          f"the {CSRF_COOKIE} cookie, or reload the review page", field="csrf")
        scope["ankang.session"], scope["ankang.signer"] = claims, self.signer
        return Principal(str(claims["kid"]), str(claims["role"]), via="session"), None

    async def _deny(self, scope: Scope, send: Send, denial: _Denial) -> None:
        log.info("access_denied", extra={"status": denial.status, "path": scope.get("path"), "reason": denial.message})
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path, accept = scope.get("path", ""), _header(scope, b"accept") or ""
        if denial.status == 401 and scope.get("method") == "GET" and path.startswith("/review") and "text/html" in accept:
            location = f"{SIGN_IN_PATH}?next={_safe_next(path)}".encode()
            await _respond(send, 303, b"", b"text/plain", [(b"location", location)])
            return
        await denial.send(send)

    async def _sign_in(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            await self._sign_in_page(send, 200, next_path=_safe_next(query.get("next", [""])[0]))
            return
        if scope.get("method") != "POST" or not _same_origin(scope):
            await _Denial(403, "sign in from the review page itself", field="csrf").send(send)
            return
        if self.sign_in_limiter.blocked(_client(scope)):
            await _Denial(429, "too many failed sign-ins from this address; wait 10 minutes").send(send)
            return
        body = await _read_body(receive, _MAX_SIGN_IN_BODY)
        form = parse_qs((body or b"").decode("utf-8", errors="replace"))
        next_path = _safe_next(form.get("next", [""])[0])
        principal = self.keys.authenticate(form.get("key", [""])[0].strip())
        if principal is None or not role_allows(principal.role, "reviewer"):
            self.sign_in_limiter.fail(_client(scope))
            log.info("sign_in_failed", extra={"path": SIGN_IN_PATH})
            await self._sign_in_page(send, 401, next_path=next_path, message="That is not a valid reviewer key.")
            return
        log.info("signed_in", extra={"key_id": principal.key_id, "role": principal.role})
        secure = scope.get("scheme") == "https" or os.environ.get("ANKANG_SECURE_COOKIES") == "1"
        cookies = [(b"set-cookie", value.encode()) for value in session_cookies(self.signer, principal, secure=secure)]
        await _respond(send, 303, b"", b"text/plain", [(b"location", next_path.encode()), *cookies])

    async def _sign_in_page(self, send: Send, status: int, *, next_path: str, message: str = "") -> None:
        notice = f'<p role="alert" style="color: #b00">{message}</p>' if message else ""
        page = _SIGN_IN_PAGE.format(message=notice, next=next_path).encode("utf-8")
        await _respond(send, status, page, b"text/html; charset=utf-8",
                       [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'")])

    async def _sign_out(self, send: Send) -> None:
        cookies = [(b"set-cookie", value.encode()) for value in cleared_cookies()]
        await _respond(send, 303, b"", b"text/plain", [(b"location", SIGN_IN_PATH.encode()), *cookies])


_SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                     (b"x-frame-options", b"DENY"))


class SecurityHeaders:
    """Adds nosniff, no-referrer and no-framing to every response (review photos must not leak or be sniffed)."""

    def __init__(self, app: Callable):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in _SECURITY_HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
