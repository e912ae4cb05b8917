"""Who a request is (`Principal`) and a configured key as stored (`StoredKey`: a salted digest,
never the key). Shared by the key table, the key store and sessions; imports nothing of auth's own."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


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
        return hmac.compare_digest(self.digest, key_digest(self.salt, secret))

    def principal(self) -> Principal:
        return Principal(self.key_id, self.role, holder=self.holder, enterprise_id=self.enterprise_id or None)


def key_digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("utf-8")).digest()
