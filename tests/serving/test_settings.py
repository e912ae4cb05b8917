"""`ServingSettings` is the one reader of the environment, and docs/configuration.md lists exactly its variables."""

from __future__ import annotations

import ast
import re

import pytest

from serving.settings import ServingSettings, SettingsError
from tests.conftest import PROJECT_ROOT

SERVING = PROJECT_ROOT / "serving"
# Entry points that build the settings from the environment: the service at start-up and the
# `ankang` commands. Everything else is handed a ServingSettings (or fields of it).
ENTRY_POINTS = {
    "service.py",
    "keys_commands.py",
    "batch/commands.py",
    "review/settings.py",
    "review/export.py",
    "unions/commands.py",
}


def calls_of(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "from_env"):
            found.add(node.attr)
    return found


def test_only_the_settings_read_the_environment():
    for path in sorted(SERVING.rglob("*.py")):
        name = path.relative_to(SERVING).as_posix()
        if name == "settings.py":
            continue
        found = calls_of(ast.parse(path.read_text(encoding="utf-8")))
        if name in ENTRY_POINTS:
            found -= {"from_env"}
        assert not found, f"serving/{name} reads the environment ({sorted(found)}); take a ServingSettings instead"


def test_the_configuration_table_lists_every_setting_and_nothing_else():
    table = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`(ANKANG_[A-Z_]+)`", row.split("|")[1])}
    assert documented == set(ServingSettings.variables())


def test_settings_built_in_code_read_no_environment(monkeypatch):
    monkeypatch.setenv("ANKANG_API_WORKERS", "7")
    assert ServingSettings().api_workers == 2 and ServingSettings.from_env().api_workers == 7


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ANKANG_API_WORKERS": "two"}, "ANKANG_API_WORKERS must be a whole number, not 'two'"),
        ({"ANKANG_DECODE_SLOTS": "0"}, "ANKANG_DECODE_SLOTS must be at least 1, not '0'"),
        ({"ANKANG_RELOAD_POLL_SECONDS": "-1"}, "ANKANG_RELOAD_POLL_SECONDS must be greater than 0"),
        ({"ANKANG_AUTH": "maybe"}, "ANKANG_AUTH must be one of on, off, not 'maybe'"),
        ({"ANKANG_LOG_LEVEL": "loud"}, "ANKANG_LOG_LEVEL must be one of 'debug', 'info', 'warning' or 'error'"),
        ({"ANKANG_RISK_ENGINE": "fast"}, "ANKANG_RISK_ENGINE must be one of 'auto', 'compiled' or 'onnxruntime'"),
    ],
)
def test_a_bad_value_names_its_variable(env, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        ServingSettings.from_env(env)


def test_empty_values_mean_the_default():
    settings = ServingSettings.from_env({"ANKANG_API_WORKERS": "", "ANKANG_ORT_THREADS": "0", "ANKANG_REDIS_URL": " "})
    assert (settings.api_workers, settings.ort_threads, settings.redis_url) == (2, None, None)
