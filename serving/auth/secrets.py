"""Server secrets (session signing, reporter pseudonyms) and the reporter pseudonym itself."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import unicodedata
from pathlib import Path

from serving.settings import ServingSettings

SESSION_SECRET_FILE, PSEUDONYM_KEY_FILE = "session.key", "pseudonym.key"


def read_or_create_secret(path: Path) -> bytes:
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


def server_secret(configured: str | None, path: Path) -> bytes:
    """The configured secret (ServingSettings checked its length), else the one kept in `path`."""
    return configured.encode("utf-8") if configured else read_or_create_secret(path)


class Pseudonymiser:
    """A stable pseudonym for a reporter's identity: HMAC-SHA256 with the server's pseudonym key.

    The same reporter always maps to the same pseudonym (so repeat reports can be linked), but
    nobody without `ANKANG_PSEUDONYM_KEY` (or ANKANG_DATA_DIR/pseudonym.key) can reverse it or
    test a guess. Store and log only the pseudonym, never the reporter text.
    """

    def __init__(self, key: bytes):
        self.key = key

    @classmethod
    def from_settings(cls, settings: ServingSettings) -> Pseudonymiser:
        return cls(server_secret(settings.pseudonym_key, settings.data_dir / PSEUDONYM_KEY_FILE))

    def __call__(self, reporter: str | None) -> str | None:
        if reporter is None:
            return None
        normalised = unicodedata.normalize("NFKC", reporter).strip()
        if not normalised:
            return None
        return "rp_" + hmac.new(self.key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
