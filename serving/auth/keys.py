"""API keys: who holds them, their salted digests in the database, and the store the middleware asks.

Keys come from `ANKANG_API_KEYS` (comma-separated `role:key` or `role:key:holder`, for
development, tests and containers) and from the `api_keys` table in the review store's database
(serving/auth/key_table.py), which holds only salted SHA-256 digests and is written by
`ankang keys create`; every replica reads the same table. Reviewer and admin keys belong to a
named person (`--holder 王安全`): the review audit trail records that person with the key id.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime

from serving.auth.key_table import active_keys, open_key_database
from serving.auth.principals import Principal, StoredKey, key_digest
from serving.auth.roles import PERSONAL_ROLES, check_role
from serving.settings import ServingSettings

KEY_PREFIX = "ank"
MAX_HOLDER = 100
REFRESH_SECONDS = 2.0  # how stale the cached table may be: a revocation reaches every replica this fast
_KEY_PATTERN = re.compile(r"^ank_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")

log = logging.getLogger("ankang.auth")


def check_holder(holder: str, *, role: str) -> str:
    """The holder's name, normalised; required for reviewer and admin keys (they belong to people)."""
    name = unicodedata.normalize("NFKC", holder or "").strip()
    if not name and role in PERSONAL_ROLES:
        raise ValueError(f"a {role} key belongs to a person: name its holder, e.g. --holder 王安全")
    if len(name) > MAX_HOLDER or any(unicodedata.category(char).startswith("C") for char in name):
        raise ValueError(f"the holder must be a name of at most {MAX_HOLDER} printable characters, not {holder!r}")
    return name


def check_enterprise(enterprise_id: str, *, role: str) -> str:
    """An enterprise key names its one enterprise; no other key names one."""
    enterprise_id = (enterprise_id or "").strip()
    if (role == "enterprise") != bool(enterprise_id):
        raise ValueError("an enterprise key needs --enterprise-id, and only an enterprise key takes one")
    if len(enterprise_id) > 200:
        raise ValueError("an enterprise_id has at most 200 characters")
    return enterprise_id


MIN_ENV_KEY_CHARS = 24  # `ankang keys create` makes 40+; a short inline key is a guessable one


def check_env_key_lengths(value: str) -> None:
    """Refuse (ValueError naming the entry) an ANKANG_API_KEYS key shorter than MIN_ENV_KEY_CHARS: the
    service does not start with one, rather than serve behind a password someone typed."""
    for index, entry in enumerate(part.strip() for part in value.split(",") if part.strip()):
        secret = entry.partition(":")[2].partition(":")[0].strip()
        if len(secret) < MIN_ENV_KEY_CHARS:
            raise ValueError(
                f"ANKANG_API_KEYS entry {index + 1}: the key has {len(secret)} characters; use at least "
                f"{MIN_ENV_KEY_CHARS} random ones (`ankang keys create` makes them)"
            )


def parse_env_keys(value: str) -> list[StoredKey]:
    """`role:key[:holder],...` from ANKANG_API_KEYS (`enterprise:key:ENTERPRISE_ID` for an enterprise
    key), hashed in memory with a per-process salt."""
    keys = []
    for index, entry in enumerate(part.strip() for part in value.split(",") if part.strip()):
        role, separator, rest = entry.partition(":")
        secret, _, holder = rest.partition(":")
        if not separator or not secret.strip():
            raise ValueError(f"ANKANG_API_KEYS entry {index + 1} is not `role:key` or `role:key:holder`")
        role = check_role(role.strip())
        enterprise_id, holder = (holder, "") if role == "enterprise" else ("", holder)
        try:
            enterprise_id = check_enterprise(enterprise_id, role=role)
        except ValueError:
            raise ValueError(f"ANKANG_API_KEYS entry {index + 1} is not `enterprise:key:ENTERPRISE_ID`") from None
        salt = secrets.token_bytes(16)
        keys.append(
            StoredKey(
                f"env-{index + 1}",
                role,
                salt,
                key_digest(salt, secret.strip()),
                holder=check_holder(holder, role="intake"),
                enterprise_id=enterprise_id,
            )
        )
    return keys


def new_key(*, role: str, holder: str = "", label: str = "", enterprise_id: str = "") -> tuple[str, StoredKey]:
    """A fresh key `ank_<id>_<secret>` and the record to store (salted digest only)."""
    holder = check_holder(holder, role=check_role(role))
    enterprise_id = check_enterprise(enterprise_id, role=role)
    key_id, secret, salt = secrets.token_hex(4), secrets.token_urlsafe(32), secrets.token_bytes(16)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    record = StoredKey(key_id, role, salt, key_digest(salt, secret), created, label, holder, enterprise_id)
    return f"{KEY_PREFIX}_{key_id}_{secret}", record


class KeyStore:
    """Keys from the settings plus the database's, cached and re-read at most every `refresh_seconds`,
    so a revocation reaches every replica within seconds without a query per request.

    `load` returns the database's unrevoked keys; `clock` (seconds, monotonic) is for tests.
    """

    def __init__(
        self,
        *,
        env_keys: list[StoredKey],
        load: Callable[[], list[StoredKey]],
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.env_keys, self.load = env_keys, load
        self.refresh_seconds, self.clock = refresh_seconds, clock
        self._table_keys: dict[str, StoredKey] = {}
        self.unreadable: str | None = None  # the last read's error type, while the table cannot be read
        self._read_at: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: ServingSettings,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> KeyStore:
        """The settings' database, migrated, with a leftover keys file imported (logged in one line)."""
        env_keys = parse_env_keys(settings.api_keys)
        engine, imported = open_key_database(settings)
        if imported is not None and imported.error:
            log.error("keys_file_not_imported", extra={"path": str(imported.path), "hint": imported.message})
        elif imported is not None:
            log.warning("keys_file_imported", extra={"path": str(imported.path), "hint": imported.message})
        return cls(env_keys=env_keys, load=lambda: active_keys(engine), refresh_seconds=refresh_seconds, clock=clock)

    def _refresh(self) -> None:
        with self._lock:
            now = self.clock()
            if self._read_at is not None and now - self._read_at < self.refresh_seconds:
                return
            try:
                self._table_keys = {record.key_id: record for record in self.load()}
                self.unreadable = None
            except Exception as error:  # any driver's failure or a bad row: deny, keep serving
                # Deny rather than keep old keys: the key this replica cannot re-read may be revoked.
                log.error(
                    "keys_database_unreadable",
                    extra={
                        "error": str(error),
                        "hint": f"database keys are refused; retried in {self.refresh_seconds:g} s",
                    },
                )
                self._table_keys = {}
                self.unreadable = type(error).__name__
            self._read_at = now

    def has_keys(self) -> bool:
        self._refresh()
        return bool(self.env_keys or self._table_keys)

    def find(self, key_id: str) -> StoredKey | None:
        """The key with this id if it is still configured (sessions end when their key is revoked)."""
        self._refresh()
        return self._table_keys.get(key_id) or next((key for key in self.env_keys if key.key_id == key_id), None)

    def authenticate(self, presented: str) -> Principal | None:
        self._refresh()
        match = _KEY_PATTERN.match(presented)
        if match and (record := self._table_keys.get(match.group(1))) and record.matches(match.group(2)):
            return record.principal()
        found = None
        for record in self.env_keys:  # check them all: the time taken does not depend on which matched
            if record.matches(presented) and found is None:
                found = record.principal()
        return found
