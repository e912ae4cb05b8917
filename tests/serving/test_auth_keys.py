"""The keys file, `ankang keys ...`, sessions, CSRF tokens and reporter pseudonyms."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

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
    read_keys_file,
    write_keys_file,
)
from serving.settings import ServingSettings, SettingsError

HOLDERS = {"intake": [], "reviewer": ["--holder", "王安全"], "admin": ["--holder", "李管理"]}


def create_key(capsys, keys_file: Path, role: str) -> str:
    command = ["keys", "create", "--role", role, *HOLDERS[role], "--label", "test", "--keys-file", str(keys_file)]
    assert ankang(command) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_keys_create_prints_the_key_once_and_stores_only_a_salted_digest(capsys, tmp_path):
    keys_file = tmp_path / "var" / "api_keys.json"
    key = create_key(capsys, keys_file, "intake")
    assert key.startswith("ank_")
    text = keys_file.read_text()
    assert key not in text and key.split("_", 2)[2] not in text
    entry = json.loads(text)["keys"][0]
    assert set(entry) == {"id", "role", "holder", "salt", "sha256", "created", "label"}
    assert entry["role"] == "intake" and entry["holder"] == "" and len(entry["salt"]) == 32
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600


def test_keys_list_shows_ids_and_roles_never_keys(capsys, tmp_path):
    keys_file = tmp_path / "api_keys.json"
    key = create_key(capsys, keys_file, "reviewer")
    assert ankang(["keys", "list", "--keys-file", str(keys_file)]) == 0
    listing = capsys.readouterr().out
    assert "reviewer" in listing and key.split("_")[1] in listing and key not in listing
    assert "王安全" in listing


@pytest.mark.parametrize("role", ["reviewer", "admin"])
def test_keys_of_people_need_a_holder(capsys, tmp_path, role):
    keys_file = tmp_path / "api_keys.json"
    assert ankang(["keys", "create", "--role", role, "--keys-file", str(keys_file)]) == 2
    assert f"a {role} key belongs to a person: name its holder, e.g. --holder 王安全" in capsys.readouterr().err
    assert not keys_file.exists()
    with pytest.raises(ValueError, match="name its holder"):
        new_key(role=role, holder="   ")


def test_a_created_reviewer_key_carries_its_holder_into_the_principal(capsys, tmp_path):
    keys_file = tmp_path / "api_keys.json"
    key = create_key(capsys, keys_file, "reviewer")
    assert json.loads(keys_file.read_text(encoding="utf-8"))["keys"][0]["holder"] == "王安全"
    assert KeyStore(env_keys=[], path=keys_file).authenticate(key) == Principal(
        key.split("_")[1], "reviewer", holder="王安全"
    )


def test_holder_names_are_checked():
    with pytest.raises(ValueError, match="the holder must be a name of at most 100 printable characters"):
        new_key(role="reviewer", holder="王\n安全")
    with pytest.raises(ValueError, match="at most 100"):
        new_key(role="reviewer", holder="x" * 101)


def test_keys_create_refuses_an_unknown_role(capsys, tmp_path):
    with pytest.raises(SystemExit):
        ankang(["keys", "create", "--role", "root", "--keys-file", str(tmp_path / "k.json")])
    assert "invalid choice: 'root'" in capsys.readouterr().err


def test_store_accepts_created_keys_and_sees_new_and_revoked_ones_without_restart(capsys, tmp_path):
    keys_file = tmp_path / "api_keys.json"
    store = KeyStore(env_keys=[], path=keys_file)
    assert not store.has_keys()
    key = create_key(capsys, keys_file, "admin")
    assert store.authenticate(key) == Principal(key.split("_")[1], "admin", holder="李管理")
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.authenticate("ank_00000000_" + "x" * 43) is None
    assert ankang(["keys", "revoke", key.split("_")[1], "--keys-file", str(keys_file)]) == 0
    assert store.authenticate(key) is None and store.find(key.split("_")[1]) is None


def test_env_keys_parse_and_reject_bad_entries():
    keys = parse_env_keys("intake:abc123, reviewer:def456 , reviewer:ghi789:王安全,")
    assert [(record.key_id, record.role, record.holder) for record in keys] == [
        ("env-1", "intake", ""),
        ("env-2", "reviewer", ""),
        ("env-3", "reviewer", "王安全"),
    ]
    store = KeyStore(env_keys=keys, path=Path("/nonexistent/api_keys.json"))
    assert store.authenticate("def456") == Principal("env-2", "reviewer")
    assert store.authenticate("ghi789") == Principal("env-3", "reviewer", holder="王安全")
    assert store.authenticate("abc12") is None
    with pytest.raises(ValueError, match="unknown role 'root'"):
        parse_env_keys("root:x")
    with pytest.raises(ValueError, match="entry 1 is not `role:key` or `role:key:holder`"):
        parse_env_keys("just-a-key")


def test_keys_file_round_trips_and_is_replaced_atomically(tmp_path):
    path = tmp_path / "api_keys.json"
    _, first = new_key(role="intake")
    _, second = new_key(role="reviewer", holder="张工", label="Zhang's laptop")
    write_keys_file(path, [first, second])
    assert read_keys_file(path) == [first, second]
    assert [p.name for p in tmp_path.iterdir()] == ["api_keys.json"]


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


def test_a_broken_keys_file_denies_instead_of_crashing(capsys, tmp_path):
    keys_file = tmp_path / "api_keys.json"
    key = create_key(capsys, keys_file, "intake")
    store = KeyStore(env_keys=parse_env_keys("reviewer:env-reviewer-key"), path=keys_file)
    assert store.authenticate(key) is not None
    keys_file.write_text('{"keys": [{"id": "x"', encoding="utf-8")
    assert store.authenticate(key) is None
    assert store.authenticate("env-reviewer-key") == Principal("env-1", "reviewer")


def test_a_keys_file_others_can_write_is_warned_about(capsys, tmp_path, caplog):
    keys_file = tmp_path / "api_keys.json"
    key = create_key(capsys, keys_file, "intake")
    keys_file.chmod(0o666)
    with caplog.at_level("WARNING", logger="ankang.auth"):
        assert KeyStore(env_keys=[], path=keys_file).authenticate(key) is not None
    assert [record.message for record in caplog.records] == ["keys_file_writable_by_others"]


def test_concurrent_key_creation_keeps_every_key(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from serving.auth import update_keys_file

    path = tmp_path / "api_keys.json"
    created = [new_key(role="intake") for _ in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda pair: update_keys_file(path, lambda records: [*records, pair[1]]), created))
    store = KeyStore(env_keys=[], path=path)
    assert all(store.authenticate(key) is not None for key, _ in created)
    assert len(read_keys_file(path)) == 16


def test_short_server_secrets_are_refused(monkeypatch, tmp_path):
    with pytest.raises(SettingsError, match="ANKANG_PSEUDONYM_KEY has 8 characters; use at least 32"):
        ServingSettings.from_env({"ANKANG_DATA_DIR": str(tmp_path), "ANKANG_PSEUDONYM_KEY": "password"})
    monkeypatch.setenv("ANKANG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANKANG_SESSION_SECRET", "x" * 31)
    with pytest.raises(SettingsError, match="ANKANG_SESSION_SECRET has 31 characters"):  # the service does not start
        ApiKeyAuth(lambda scope, receive, send: None)


def test_the_middleware_reads_its_settings_once_not_per_request(monkeypatch, tmp_path):
    monkeypatch.setenv("ANKANG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANKANG_AUTH", "on")
    monkeypatch.setenv("ANKANG_API_KEYS", "intake:first-key-0123456789")
    middleware = ApiKeyAuth(lambda scope, receive, send: None)
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
