"""Structured JSON logs: a request id on every line, and no keys, photo bytes or reporter identity."""

from __future__ import annotations

import io
import json
import logging

import pytest

from serving.logging_setup import configure_logging, redact
from tests.serving.conftest import encode_image
from tests.serving.test_auth_api import KEYS, auth_on

REPORTER = "王小明 13800138000"


@pytest.fixture
def log_lines(monkeypatch):
    buffer = io.StringIO()
    configure_logging(stream=buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    configure_logging()


def test_request_line_has_id_key_id_and_role_but_no_secrets(api, tmp_path, log_lines):
    photo = encode_image((255, 0, 0))
    with auth_on(api, tmp_path) as client:
        response = client.post(
            "/v1/photos/assess?token=" + KEYS["intake"],
            files={"photo": ("a.jpg", photo, "image/jpeg")},
            data={"reporter": REPORTER, "site_id": "s1"},
            headers={"Authorization": f"Bearer {KEYS['intake']}", "X-Request-ID": "req-0001-abcd"},
        )
        assert response.status_code == 200
        client.post(
            "/v1/photos/assess",
            files={"photo": ("a.jpg", photo, "image/jpeg")},
            headers={"Authorization": "Bearer ank_deadbeef_guessedguessedguessedguessed"},
        )
    lines = log_lines()
    request = next(line for line in lines if line["message"] == "request" and line["request_id"] == "req-0001-abcd")
    assert request | {"duration_ms": 0} == {
        "ts": request["ts"],
        "level": "info",
        "logger": "ankang.request",
        "message": "request",
        "request_id": "req-0001-abcd",
        "method": "POST",
        "path": "/v1/photos/assess",
        "status": 200,
        "duration_ms": 0,
        "key_id": "env-1",
        "role": "intake",
    }
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    for secret in (KEYS["intake"], "guessedguessed", REPORTER, "13800138000", repr(photo[:40])[2:-1]):
        assert secret not in text
    assert any(line["message"] == "access_denied" and line["status"] == 401 for line in lines)


def test_redact_scrubs_keys_bearer_tokens_cookies_and_byte_dumps():
    text = (
        "key ank_0a1b2c3d_Zm9vYmFyYmF6cXV4cXV1eA header Authorization: Bearer sk-live-123456789 "
        "cookie ankang_session=eyJraWQiOiJ4In0.sig; data b'" + "\\xff" * 40 + "'"
    )
    cleaned = redact(text)
    assert "Zm9vYmFy" not in cleaned and "sk-live-123456789" not in cleaned and "eyJraWQ" not in cleaned
    assert "\\xff\\xff" not in cleaned
    assert "ank_[redacted]" in cleaned and "b'[bytes redacted]'" in cleaned


def test_forbidden_extra_fields_and_exception_text_are_dropped_or_scrubbed(log_lines):
    logger = logging.getLogger("ankang.test")
    logger.info("decision stored", extra={"reporter": REPORTER, "photo": b"\xff\xd8", "site_id": "s9"})
    try:
        raise ValueError("bad key ank_0a1b2c3d_c2VjcmV0c2VjcmV0c2VjcmV0")
    except ValueError:
        logger.exception("failed")
    stored, failed = log_lines()
    assert stored["site_id"] == "s9" and "reporter" not in stored and "photo" not in stored
    assert "c2VjcmV0" not in failed["exception"] and "ank_[redacted]" in failed["exception"]
