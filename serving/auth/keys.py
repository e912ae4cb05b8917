"""API keys: who holds them, their salted digests in the keys file, and the store the middleware asks.

Keys come from `ANKANG_API_KEYS` (comma-separated `role:key` or `role:key:holder`, for
development, tests and containers) and from the keys file (default ANKANG_DATA_DIR/api_keys.json),
which stores only salted SHA-256 digests and is written by `ankang keys create`. Reviewer and
admin keys belong to a named person (`--holder 王安全`): the review audit trail records that
person with the key id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from serving.auth.roles import PERSONAL_ROLES, check_role
from serving.settings import ServingSettings

KEY_PREFIX = "ank"
MAX_HOLDER = 100
_KEY_PATTERN = re.compile(r"^ank_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")

log = logging.getLogger("ankang.auth")


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's id (never the key itself), its role and the person holding it."""

    key_id: str
    role: str
    via: str = "key"  # "key" (header), "session" (review-page cookie) or "none" (auth off)
    holder: str = ""
    enterprise_id: str | None = None  # role enterprise: the one enterprise the key answers for


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    role: str
    salt: bytes
    digest: bytes
    created: str = ""
    label: str = ""
    holder: str = ""
    enterprise_id: str = ""

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.digest, _digest(self.salt, secret))

    def principal(self) -> Principal:
        return Principal(self.key_id, self.role, holder=self.holder, enterprise_id=self.enterprise_id or None)


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("utf-8")).digest()


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
                _digest(salt, secret.strip()),
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
    record = StoredKey(key_id, role, salt, _digest(salt, secret), created, label, holder, enterprise_id)
    return f"{KEY_PREFIX}_{key_id}_{secret}", record


def _record_to_json(record: StoredKey) -> dict[str, str]:
    return {
        "id": record.key_id,
        "role": record.role,
        "holder": record.holder,
        "salt": record.salt.hex(),
        "sha256": record.digest.hex(),
        "created": record.created,
        "label": record.label,
        **({"enterprise_id": record.enterprise_id} if record.enterprise_id else {}),
    }


def _record_from_json(entry: dict[str, str]) -> StoredKey:
    return StoredKey(
        entry["id"],
        check_role(entry["role"]),
        bytes.fromhex(entry["salt"]),
        bytes.fromhex(entry["sha256"]),
        entry.get("created", ""),
        entry.get("label", ""),
        entry.get("holder", ""),
        entry.get("enterprise_id", ""),
    )


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
        json.dump({"keys": [_record_to_json(record) for record in records]}, handle, indent=2, ensure_ascii=False)
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
    """Keys from the settings plus the keys file, which is re-read when it changes on disk."""

    def __init__(self, *, env_keys: list[StoredKey], path: Path):
        self.env_keys, self.path = env_keys, path
        self._file_keys: dict[str, StoredKey] = {}
        self._stamp: tuple[int, int] | None = None

    @classmethod
    def from_settings(cls, settings: ServingSettings) -> KeyStore:
        return cls(env_keys=parse_env_keys(settings.api_keys), path=settings.resolved_api_keys_file)

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stat, stamp = None, None
        if stamp != self._stamp:
            if stat is not None and stat.st_mode & 0o022:
                log.warning(
                    "keys_file_writable_by_others",
                    extra={
                        "path": str(self.path),
                        "hint": f"anyone who can write it can add a key; chmod 600 {self.path}",
                    },
                )
            try:
                self._file_keys = {record.key_id: record for record in read_keys_file(self.path)}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                # Deny rather than keep old keys: a half-edited file may be someone revoking a key.
                log.error(
                    "keys_file_unreadable",
                    extra={
                        "path": str(self.path),
                        "error": str(error),
                        "hint": "file keys are ignored until it is fixed",
                    },
                )
                self._file_keys = {}
            self._stamp = stamp

    def has_keys(self) -> bool:
        self._refresh()
        return bool(self.env_keys or self._file_keys)

    def find(self, key_id: str) -> StoredKey | None:
        """The key with this id if it is still configured (sessions end when their key is revoked)."""
        self._refresh()
        return self._file_keys.get(key_id) or next((key for key in self.env_keys if key.key_id == key_id), None)

    def authenticate(self, presented: str) -> Principal | None:
        self._refresh()
        match = _KEY_PATTERN.match(presented)
        if match and (record := self._file_keys.get(match.group(1))) and record.matches(match.group(2)):
            return record.principal()
        found = None
        for record in self.env_keys:  # check them all: the time taken does not depend on which matched
            if record.matches(presented) and found is None:
                found = record.principal()
        return found
