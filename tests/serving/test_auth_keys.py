"""Keys in the database, `ankang keys ...`, the old keys file's import, sessions, CSRF tokens and reporter
pseudonyms. The key tests run on SQLite and on PostgreSQL (skipped when 127.0.0.1:5432 does not answer)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from ankang_cli import main as ankang
from serving.auth import (
    ApiKeyAuth,
    KeyStore,
    Principal,
    Pseudonymiser,
    SessionSigner,
    StoredKey,
    new_key,
    parse_env_keys,
)
from serving.auth.key_table import active_keys, api_keys, insert_keys, open_key_database
from serving.settings import ServingSettings, SettingsError

HOLDERS = {"intake": [], "reviewer": ["--holder", "王安全"], "admin": ["--holder", "李管理"]}


class Clock:
    """A monotonic clock the test moves: the store's cache period passes without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def create_key(capsys, role: str) -> str:
    assert ankang(["keys", "create", "--role", role, *HOLDERS[role], "--label", "test"]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def rows(settings: ServingSettings) -> list[dict]:
    engine, _ = open_key_database(settings)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(api_keys))]


def write_legacy_file(path: Path, records: list[StoredKey]) -> None:
    """The keys file as `ankang keys create` wrote it before the keys moved to the database."""
    entries = [
        {"id": r.key_id, "role": r.role, "holder": r.holder, "salt": r.salt.hex(), "sha256": r.digest.hex()}
        | {"created": r.created, "label": r.label}
        | ({"enterprise_id": r.enterprise_id} if r.enterprise_id else {})
        for r in records
    ]
    path.write_text(json.dumps({"keys": entries}), encoding="utf-8")


def test_keys_create_prints_the_key_once_and_stores_only_a_salted_digest(capsys, key_settings):
    key = create_key(capsys, "intake")
    assert key.startswith("ank_")
    [row] = rows(key_settings)
    assert row["key_id"] == key.split("_")[1] and row["role"] == "intake" and row["holder"] == ""
    assert len(row["salt"]) == 16 and len(row["digest"]) == 32 and row["revoked_at"] is None
    secret = key.split("_", 2)[2]
    assert not any(secret in str(value) or secret.encode() in bytes(str(value), "utf-8") for value in row.values())


def test_keys_list_shows_ids_and_roles_never_keys(capsys, key_settings):
    key = create_key(capsys, "reviewer")
    assert ankang(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "reviewer" in listing and key.split("_")[1] in listing and key not in listing
    assert "王安全" in listing


@pytest.mark.parametrize("role", ["reviewer", "admin"])
def test_keys_of_people_need_a_holder(capsys, key_settings, role):
    assert ankang(["keys", "create", "--role", role]) == 2
    assert f"a {role} key belongs to a person: name its holder, e.g. --holder 王安全" in capsys.readouterr().err
    assert rows(key_settings) == []
    with pytest.raises(ValueError, match="name its holder"):
        new_key(role=role, holder="   ")


def test_a_created_reviewer_key_carries_its_holder_into_the_principal(capsys, key_settings):
    key = create_key(capsys, "reviewer")
    assert rows(key_settings)[0]["holder"] == "王安全"
    assert KeyStore.from_settings(key_settings).authenticate(key) == Principal(
        key.split("_")[1], "reviewer", holder="王安全"
    )


def test_holder_names_are_checked():
    with pytest.raises(ValueError, match="the holder must be a name of at most 100 printable characters"):
        new_key(role="reviewer", holder="王\n安全")
    with pytest.raises(ValueError, match="at most 100"):
        new_key(role="reviewer", holder="x" * 101)


def test_keys_create_refuses_an_unknown_role(capsys):
    with pytest.raises(SystemExit):
        ankang(["keys", "create", "--role", "root"])
    assert "invalid choice: 'root'" in capsys.readouterr().err


def test_the_store_sees_new_and_revoked_keys_within_its_cache_period(capsys, key_settings):
    clock = Clock()
    store = KeyStore.from_settings(key_settings, refresh_seconds=2.0, clock=clock)
    assert not store.has_keys()
    key, key_id = (key := create_key(capsys, "admin")), key.split("_")[1]
    assert store.authenticate(key) is None  # the cached table, read 0 s ago
    clock.now += 2.0
    assert store.authenticate(key) == Principal(key_id, "admin", holder="李管理")
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.authenticate("ank_00000000_" + "x" * 43) is None
    assert ankang(["keys", "revoke", key_id]) == 0
    assert f"revoked key {key_id}; every replica refuses it within 2 s" in capsys.readouterr().out
    clock.now += 1.9
    assert store.authenticate(key) is not None
    clock.now += 0.1
    assert store.authenticate(key) is None and store.find(key_id) is None and not store.has_keys()


def test_revoking_an_unknown_or_revoked_key_says_which(capsys, key_settings):
    assert ankang(["keys", "revoke", "0badc0de"]) == 1
    assert "no key with id 0badc0de in " in capsys.readouterr().err
    key_id = create_key(capsys, "intake").split("_")[1]
    assert ankang(["keys", "revoke", key_id]) == 0
    assert ankang(["keys", "revoke", key_id]) == 1
    assert f"key {key_id} was already revoked at 20" in capsys.readouterr().err
    assert ankang(["keys", "list"]) == 0
    assert "no keys in " in capsys.readouterr().out


def test_env_keys_parse_and_reject_bad_entries():
    keys = parse_env_keys("intake:abc123, reviewer:def456 , reviewer:ghi789:王安全,")
    assert [(record.key_id, record.role, record.holder) for record in keys] == [
        ("env-1", "intake", ""),
        ("env-2", "reviewer", ""),
        ("env-3", "reviewer", "王安全"),
    ]
    store = KeyStore(env_keys=keys, load=list)
    assert store.authenticate("def456") == Principal("env-2", "reviewer")
    assert store.authenticate("ghi789") == Principal("env-3", "reviewer", holder="王安全")
    assert store.authenticate("abc12") is None
    with pytest.raises(ValueError, match="unknown role 'root'"):
        parse_env_keys("root:x")
    with pytest.raises(ValueError, match="entry 1 is not `role:key` or `role:key:holder`"):
        parse_env_keys("just-a-key")


def test_the_keys_file_is_imported_once_without_its_keys_already_in_the_table(capsys, key_settings, caplog):
    there_id = create_key(capsys, "intake").split("_")[1]
    revoked = create_key(capsys, "intake").split("_")[1]
    assert ankang(["keys", "revoke", revoked]) == 0
    [there, gone] = sorted((r for r in rows(key_settings)), key=lambda row: row["key_id"] != there_id)
    old_key, old = new_key(role="reviewer", holder="张工", label="Zhang's laptop")
    as_record = lambda row: StoredKey(row["key_id"], "intake", row["salt"], row["digest"])  # noqa: E731
    path = key_settings.resolved_api_keys_file
    write_legacy_file(path, [as_record(there), as_record(gone), old])
    capsys.readouterr()
    with caplog.at_level("WARNING", logger="ankang.auth"):
        store = KeyStore.from_settings(key_settings)
    assert [record.hint for record in caplog.records] == [
        f"imported 1 of the 3 keys in {path} into the database (2 already there); "
        "the file is no longer read (renamed api_keys.json.imported)"
    ]
    assert store.authenticate(old_key) == Principal(old.key_id, "reviewer", holder="张工")
    assert store.find(revoked) is None  # the old file cannot bring a revoked key back
    assert not path.exists() and path.with_name("api_keys.json.imported").is_file()
    write_legacy_file(path, [old])  # a second copy (another machine's): nothing new, said in one line
    assert ankang(["keys", "list"]) == 0
    assert capsys.readouterr().err.strip().splitlines() == [
        f"ankang keys: imported 0 of the 1 keys in {path} into the database (1 already there); "
        "the file is no longer read (renamed api_keys.json.imported)"
    ]
    assert ankang(["keys", "list"]) == 0 and capsys.readouterr().err == ""


def test_a_broken_keys_file_is_not_imported_and_says_why(capsys, key_settings, caplog):
    path = key_settings.resolved_api_keys_file
    path.write_text('{"keys": [{"id": "x"', encoding="utf-8")
    with caplog.at_level("ERROR", logger="ankang.auth"):
        assert not KeyStore.from_settings(key_settings).has_keys()  # the service starts, denying
    assert [record.message for record in caplog.records] == ["keys_file_not_imported"]
    assert ankang(["keys", "list"]) == 0
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"ankang keys: the keys file {path} was not imported (JSONDecodeError: ")
    assert line.endswith("; fix or remove it") and path.is_file() and rows(key_settings) == []


def test_an_unreadable_database_denies_its_keys_but_not_the_env_keys(caplog):
    def fail() -> list[StoredKey]:
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    store = KeyStore(env_keys=parse_env_keys("reviewer:env-reviewer-key"), load=fail)
    with caplog.at_level("ERROR", logger="ankang.auth"):
        assert store.authenticate("ank_0badc0de_" + "x" * 43) is None
    assert store.authenticate("env-reviewer-key") == Principal("env-1", "reviewer")
    assert [record.message for record in caplog.records] == ["keys_database_unreadable"]
    assert store.unreadable == "OperationalError"


def test_with_the_key_database_unreadable_requests_get_503_not_no_keys_configured():
    from serving.auth.middleware import ApiKeyAuth

    def fail() -> list[StoredKey]:
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    auth = ApiKeyAuth.__new__(ApiKeyAuth)
    auth.keys = KeyStore(env_keys=[], load=fail)
    _, denial = auth._authorise({"path": "/v1/review/queue", "headers": []}, "reviewer")
    assert denial.status == 503 and "key database cannot be read" in denial.message


def test_session_expires_and_csrf_token_is_bound_to_its_session():
    signer = SessionSigner(b"k" * 32, max_age=60)
    cookie = signer.issue(Principal("abcd1234", "reviewer"), now=1000.0)
    claims = signer.verify(cookie, now=1059.0)
    assert claims["kid"] == "abcd1234" and claims["role"] == "reviewer"
    assert signer.verify(cookie, now=1061.0) is None
    other = signer.verify(signer.issue(Principal("abcd1234", "reviewer"), now=1000.0), now=1001.0)
    assert signer.csrf_ok(claims, signer.csrf_token(claims))
    assert not signer.csrf_ok(claims, signer.csrf_token(other))
    assert not signer.csrf_ok(claims, None)


def test_pseudonym_is_stable_keyed_and_not_the_reporter(tmp_path):
    pseudonymise = Pseudonymiser.from_settings(ServingSettings(data_dir=tmp_path))
    first = pseudonymise("王小明 13800138000")
    assert first == pseudonymise(" 王小明 13800138000 ") and first.startswith("rp_") and len(first) == 35
    assert "13800138000" not in first and first != pseudonymise("王小明 13800138001")
    assert stat.S_IMODE((tmp_path / "pseudonym.key").stat().st_mode) == 0o600
    assert Pseudonymiser.from_settings(ServingSettings(data_dir=tmp_path))("王小明 13800138000") == first
    other = ServingSettings(data_dir=tmp_path, pseudonym_key="another server's secret, 32+ characters")
    assert Pseudonymiser.from_settings(other)("王小明 13800138000") != first
    assert pseudonymise(None) is None and pseudonymise("   ") is None


def test_stored_key_compares_digests_not_text():
    _, record = new_key(role="intake")
    assert isinstance(record, StoredKey) and not record.matches("")


def test_concurrent_key_creation_keeps_every_key(key_settings):
    from concurrent.futures import ThreadPoolExecutor

    engine, _ = open_key_database(key_settings)
    created = [new_key(role="intake") for _ in range(16)]
    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(lambda pair: insert_keys(engine, [pair[1]]), created)) == 16
    store = KeyStore.from_settings(key_settings)
    assert all(store.authenticate(key) is not None for key, _ in created)
    assert len(active_keys(engine)) == 16


def test_short_server_secrets_are_refused(monkeypatch, tmp_path):
    with pytest.raises(SettingsError, match="ANKANG_PSEUDONYM_KEY has 8 characters; use at least 32"):
        ServingSettings.from_env({"ANKANG_DATA_DIR": str(tmp_path), "ANKANG_PSEUDONYM_KEY": "password"})
    monkeypatch.setenv("ANKANG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANKANG_SESSION_SECRET", "x" * 31)
    with pytest.raises(SettingsError, match="ANKANG_SESSION_SECRET has 31 characters"):  # the service does not start
        ApiKeyAuth(lambda scope, receive, send: None, settings=ServingSettings.from_env())


def test_the_middleware_reads_its_settings_once_not_per_request(monkeypatch, tmp_path):
    monkeypatch.setenv("ANKANG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANKANG_AUTH", "on")
    monkeypatch.setenv("ANKANG_API_KEYS", "intake:first-key-0123456789")
    middleware = ApiKeyAuth(lambda scope, receive, send: None, settings=ServingSettings.from_env())
    monkeypatch.setenv("ANKANG_API_KEYS", "intake:second-key-0123456789")
    monkeypatch.setenv("ANKANG_AUTH", "off")
    assert middleware.enabled and middleware.keys.authenticate("first-key-0123456789") is not None
    assert middleware.keys.authenticate("second-key-0123456789") is None


def test_failure_limiter_window_and_memory_bound():
    from serving.auth import FailureLimiter

    limiter = FailureLimiter(limit=3, window=60.0, max_clients=100)
    for moment in (10.0, 11.0, 12.0):
        limiter.fail("10.0.0.1", now=moment)
    assert limiter.blocked("10.0.0.1", now=13.0) and not limiter.blocked("10.0.0.2", now=13.0)
    assert not limiter.blocked("10.0.0.1", now=71.5)  # the first failures left the window
    for index in range(1000):
        limiter.fail(f"2001:db8::{index:x}", now=100.0)
    assert len(limiter.windows._events) == 100
