"""`ServingSettings`: every `ANKANG_*` variable the service reads, parsed once and handed to the parts.

The environment is read in exactly one place (`ServingSettings.from_env`, through pydantic-settings'
environment source); the parts take the settings object (or the fields they need) as an argument,
so a test builds the settings it wants (`ServingSettings(auth=False, ...)` reads no environment)
instead of patching the environment. Every field is a row of docs/configuration.md
(tests/serving/test_settings.py holds the two equal).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from runtime.paths import MODELS_DIR, PROJECT_ROOT
from runtime.session import SessionOptions

ENV_PREFIX = "ANKANG_"


class SettingsError(ValueError):
    """A variable of the environment has a value the service cannot use; the message names it."""


def _switch(choices: tuple[str, str], on: str) -> BeforeValidator:
    """A yes/no variable spelled one way only (`on`/`off`, `0`/`1`): anything else is refused."""

    def parse(value: Any) -> Any:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {text!r}")
        return text == on

    return BeforeValidator(parse)


def _secret(value: str | None) -> str | None:
    if value is not None and len(value) < 32:
        raise ValueError(
            f"has {len(value)} characters; use at least 32 random ones "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`) or unset it "
            "so the service generates one under ANKANG_DATA_DIR"
        )
    return value


def _proxies(value: Any) -> str:
    from serving.forwarded import parse_proxies  # the one parser of the list

    text = "" if value is None else str(value).strip()
    parse_proxies(text)  # ValueError names the entry
    return text


def _stripped(value: Any) -> Any:
    return (value.strip() or None) if isinstance(value, str) else value


OnOff = Annotated[bool, _switch(("on", "off"), "on")]
ZeroOne = Annotated[bool, _switch(("0", "1"), "1")]
Secret = Annotated[str | None, AfterValidator(_secret)]
Text = Annotated[str | None, BeforeValidator(_stripped)]
Count = Annotated[int, Field(ge=1)]
Threads = Annotated[Annotated[int, Field(ge=0)] | None, AfterValidator(lambda value: value or None)]
Seconds = Annotated[float, Field(gt=0)]
Proxies = Annotated[str, BeforeValidator(_proxies)]
RiskEngine = Literal["auto", "compiled", "onnxruntime"]  # runtime.risk.engines.ENGINES
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(lambda value: str(value).upper())]
EXPECTED = {  # pydantic's error types, in this module's words
    "int_parsing": lambda ctx: "a whole number",
    "int_from_float": lambda ctx: "a whole number",
    "float_parsing": lambda ctx: "a number",
    "greater_than_equal": lambda ctx: f"at least {ctx['ge']}",
    "greater_than": lambda ctx: f"greater than {ctx['gt']}",
    "literal_error": lambda ctx: f"one of {ctx['expected'].lower()}",
}


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (default: `os.environ`)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]):
        self._given = env
        super().__init__(settings_cls, case_sensitive=False, env_prefix=ENV_PREFIX)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # An empty (or blank) variable means the default, as if it were unset.
        return {name.lower(): value for name, value in self._given.items() if value and value.strip()}


def _message(error: ValidationError) -> str:
    """The first problem, naming the variable: `ANKANG_API_WORKERS must be a whole number, not 'two'`."""
    first = error.errors()[0]
    variable = ENV_PREFIX + str(first["loc"][0]).upper()
    if first["type"] == "value_error":
        return f"{variable} {first['ctx']['error']}"
    expected = EXPECTED.get(first["type"])
    if expected is None:
        return f"{variable}: {first['msg']}"
    return f"{variable} must be {expected(first.get('ctx', {}))}, not {first['input']!r}"


class ServingSettings(BaseSettings):
    """The service's configuration. Defaults are what `make run` serves with."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    data_dir: Path = PROJECT_ROOT / "var"
    models_dir: Path = MODELS_DIR
    photo_model_dir: Path | None = None  # None: models_dir / "hazard_photo"
    risk_model_dir: Path | None = None  # None: models_dir / "labor_risk"
    auth: OnOff = True
    api_keys: str = ""  # inline keys, "role:secret[:holder],..." (tests, containers)
    api_keys_file: Path | None = None  # None: data_dir / "api_keys.json"
    session_secret: Secret = None  # None: generated once in data_dir / "session.key"
    pseudonym_key: Secret = None  # None: generated once in data_dir / "pseudonym.key"
    secure_cookies: ZeroOne = False
    database_url: str | None = None  # None: SQLite in data_dir / "review" / "review.db"
    photo_store: Text = None  # a folder or an fsspec URL (s3://bucket/prefix); None: data_dir/review/photos
    redis_url: Text = None  # throttling counts shared by replicas; None: each process counts its own
    trusted_proxies: Proxies = ""  # addresses/networks whose X-Forwarded-For counts (serving/forwarded.py); "": none
    keep_gps: ZeroOne = False
    api_workers: Count = 2
    max_batch_size: Count = 32
    max_queue: Count = 256
    decode_slots: Count = 4
    reload_poll_seconds: Seconds = 5.0
    ort_threads: Threads = None  # None (or 0): the cores this process may use
    ort_spinning: ZeroOne = False
    risk_engine: RiskEngine = "auto"  # risk trees compiled at load (auto: where a C compiler is found) or onnxruntime
    log_level: LogLevel = "INFO"
    orders_webhook_url: str | None = None  # None: the outbox is kept, not delivered (serving/orders/)
    orders_webhook_secret: str | None = None  # signs each delivery (X-Ankang-Signature)
    orders_deliver_seconds: Seconds = 2.0
    orders_escalate_seconds: Seconds = 300.0

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, *_sources: Any, **_: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # built in code, settings read nothing; `from_env` reads the environment

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingSettings:
        """Parse `env` (default `os.environ`) once; a bad value raises `SettingsError` naming the variable."""
        try:
            return cls(**_Environment(cls, os.environ if env is None else env)())
        except ValidationError as error:
            raise SettingsError(_message(error)) from None

    @classmethod
    def variables(cls) -> list[str]:
        """Every variable the service reads, e.g. ANKANG_DATA_DIR (docs/configuration.md lists them)."""
        return [ENV_PREFIX + name.upper() for name in cls.model_fields]

    def with_changes(self, **changes: Any) -> ServingSettings:
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}")
        return self.model_copy(update=changes)

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


# Other programs' variables. This module is the one place in serving/ that touches the environment,
# so the two that are not Ankang settings pass through here too.
def bentoml_multiproc_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR: set by BentoML for its workers (their metrics are added up there)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def set_uvicorn_forwarded_allow_ips(value: str) -> None:
    """FORWARDED_ALLOW_IPS: read by uvicorn when a worker builds its server (serving/forwarded.py)."""
    os.environ["FORWARDED_ALLOW_IPS"] = value
