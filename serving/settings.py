"""`ServingSettings`: every `ANKANG_*` variable the service reads, parsed once and handed to the parts.

The environment is read in exactly one place (`ServingSettings.from_env`); the parts take the
settings object (or the fields they need) as an argument, so a test builds the settings it wants
instead of patching the environment. Every field is documented in the table in docs/configuration.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from runtime.paths import MODELS_DIR, PROJECT_ROOT
from runtime.session import SessionOptions


class SettingsError(ValueError):
    """A variable of the environment has a value the service cannot use; the message names it."""


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "")
    return value.strip() if value.strip() else default


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = _text(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _text(env, name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if not value > 0:
        raise SettingsError(f"{name} must be greater than 0, not {raw}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _text(env, name, default).lower()
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _secret(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name) or None
    if value is not None and len(value) < 32:
        raise SettingsError(
            f"{name} has {len(value)} characters; use at least 32 random ones "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`) or unset it "
            "so the service generates one under ANKANG_DATA_DIR"
        )
    return value


@dataclass(frozen=True)
class ServingSettings:
    """The service's configuration. Defaults are what `make run` serves with."""

    data_dir: Path = PROJECT_ROOT / "var"
    models_dir: Path = MODELS_DIR
    photo_model_dir: Path | None = None  # None: models_dir / "hazard_photo"
    risk_model_dir: Path | None = None  # None: models_dir / "labor_risk"
    auth: bool = True
    api_keys: str = ""  # inline keys, "role:secret[:holder],..." (tests, containers)
    api_keys_file: Path | None = None  # None: data_dir / "api_keys.json"
    session_secret: str | None = None  # None: generated once in data_dir / "session.key"
    pseudonym_key: str | None = None  # None: generated once in data_dir / "pseudonym.key"
    secure_cookies: bool = False
    database_url: str | None = None  # None: SQLite in data_dir / "review" / "review.db"
    photo_store: str | None = None  # a folder or an fsspec URL (s3://bucket/prefix); None: data_dir/review/photos
    redis_url: str | None = None  # throttling counts shared by replicas; None: each process counts its own
    keep_gps: bool = False
    api_workers: int = 2
    max_batch_size: int = 32
    max_queue: int = 256
    decode_slots: int = 4
    reload_poll_seconds: float = 5.0
    ort_threads: int | None = None  # None: the cores this process may use
    ort_spinning: bool = False
    log_level: str = "INFO"
    orders_webhook_url: str | None = None  # None: the outbox is kept, not delivered (serving/orders/)
    orders_webhook_secret: str | None = None  # signs each delivery (X-Ankang-Signature)
    orders_deliver_seconds: float = 2.0
    orders_escalate_seconds: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingSettings:
        """Parse `env` (default `os.environ`) once; a bad value raises `SettingsError` naming the variable."""
        env = os.environ if env is None else env
        data_dir = Path(_text(env, "ANKANG_DATA_DIR", str(cls.data_dir)))
        optional_path = lambda name: Path(env[name]) if env.get(name, "").strip() else None  # noqa: E731
        ort_threads = _integer(env, "ANKANG_ORT_THREADS", 0, minimum=0) or None
        return cls(
            data_dir=data_dir,
            models_dir=Path(_text(env, "ANKANG_MODELS_DIR", str(cls.models_dir))),
            photo_model_dir=optional_path("ANKANG_PHOTO_MODEL_DIR"),
            risk_model_dir=optional_path("ANKANG_RISK_MODEL_DIR"),
            auth=_choice(env, "ANKANG_AUTH", "on", ("on", "off")) == "on",
            api_keys=env.get("ANKANG_API_KEYS", ""),
            api_keys_file=optional_path("ANKANG_API_KEYS_FILE"),
            session_secret=_secret(env, "ANKANG_SESSION_SECRET"),
            pseudonym_key=_secret(env, "ANKANG_PSEUDONYM_KEY"),
            secure_cookies=_choice(env, "ANKANG_SECURE_COOKIES", "0", ("0", "1")) == "1",
            database_url=env.get("ANKANG_DATABASE_URL") or None,
            photo_store=env.get("ANKANG_PHOTO_STORE", "").strip() or None,
            redis_url=env.get("ANKANG_REDIS_URL", "").strip() or None,
            keep_gps=_choice(env, "ANKANG_KEEP_GPS", "0", ("0", "1")) == "1",
            api_workers=_integer(env, "ANKANG_API_WORKERS", cls.api_workers),
            max_batch_size=_integer(env, "ANKANG_MAX_BATCH_SIZE", cls.max_batch_size),
            max_queue=_integer(env, "ANKANG_MAX_QUEUE", cls.max_queue),
            decode_slots=_integer(env, "ANKANG_DECODE_SLOTS", cls.decode_slots),
            reload_poll_seconds=_number(env, "ANKANG_RELOAD_POLL_SECONDS", cls.reload_poll_seconds),
            ort_threads=ort_threads,
            ort_spinning=_choice(env, "ANKANG_ORT_SPINNING", "0", ("0", "1")) == "1",
            log_level=_choice(env, "ANKANG_LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
            orders_webhook_url=env.get("ANKANG_ORDERS_WEBHOOK_URL") or None,
            orders_webhook_secret=env.get("ANKANG_ORDERS_WEBHOOK_SECRET") or None,
            orders_deliver_seconds=_number(env, "ANKANG_ORDERS_DELIVER_SECONDS", cls.orders_deliver_seconds),
            orders_escalate_seconds=_number(env, "ANKANG_ORDERS_ESCALATE_SECONDS", cls.orders_escalate_seconds),
        )

    def with_changes(self, **changes) -> ServingSettings:
        unknown = set(changes) - {spec.name for spec in fields(self)}
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}")
        return replace(self, **changes)

    @property
    def session_options(self) -> SessionOptions:
        return SessionOptions(threads=self.ort_threads, spinning=self.ort_spinning)

    @property
    def resolved_photo_model_dir(self) -> Path:
        return self.photo_model_dir or self.models_dir / "hazard_photo"

    @property
    def resolved_risk_model_dir(self) -> Path:
        return self.risk_model_dir or self.models_dir / "labor_risk"

    @property
    def resolved_api_keys_file(self) -> Path:
        return self.api_keys_file or self.data_dir / "api_keys.json"

    @property
    def review_dir(self) -> Path:
        return self.data_dir / "review"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.review_dir / 'review.db'}"

    @property
    def resolved_photo_store(self) -> str:
        return self.photo_store or str(self.review_dir / "photos")
