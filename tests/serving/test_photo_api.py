"""POST /v1/photos/assess through the ASGI app, on the toy colour model."""

from __future__ import annotations

import io

import pytest

from tests.serving.conftest import encode_image
from tests.toy_models import PHOTO_LABELS

RED, GREY = (255, 0, 0), (128, 128, 128)


def assess(api, data: bytes, *, field: str = "photo", filename: str = "site.jpg", **form: str):
    return api.post("/v1/photos/assess", files={field: (filename, data, "image/jpeg")}, data=form)


def test_red_photo_is_fire_and_urgent(api):
    response = assess(api, encode_image(RED), site_id="site-7", channel="wechat")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["hazards"]) == set(PHOTO_LABELS)
    assert body["hazards"]["fire_smoke"] > 0.99
    assert [item["type"] for item in body["flagged"]] == ["fire_smoke"]
    assert body["flagged"][0]["name_zh"] == "明火烟雾"
    assert body["flagged"][0]["gb6441"] == "火灾"
    assert body["flagged"][0]["severity"] == "疑似重大"
    assert body["triage"] == "urgent"
    assert body["model"] == {"name": "hazard_photo", "version": "toy-1"}
    assert body["metadata"]["site_id"] == "site-7"
    assert len(body["photo_id"]) == 32


def test_grey_photo_is_clear(api):
    body = assess(api, encode_image(GREY)).json()
    assert body["flagged"] == []
    assert body["triage"] == "clear"
    assert max(body["hazards"].values()) < 0.5


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_are_accepted(api, fmt):
    response = assess(api, encode_image((0, 0, 255), fmt=fmt), filename=f"x.{fmt.lower()}")
    assert response.status_code == 200, response.text
    assert [item["type"] for item in response.json()["flagged"]] == ["wet_floor"]
    assert response.json()["triage"] == "review"


def test_content_decides_not_the_file_name(api):
    response = assess(api, b"%PDF-1.7 not a photo", filename="photo.jpg")
    assert response.status_code == 415
    assert response.json()["error"] == {
        "field": "photo",
        "message": "the file is not a JPEG, PNG or WebP image (checked by its content)",
    }


def test_empty_file_is_rejected(api):
    response = assess(api, b"")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "the uploaded file is empty (0 bytes)"


def test_truncated_jpeg_is_rejected_and_server_keeps_serving(api):
    data = encode_image(RED, size=(400, 300))
    response = assess(api, data[: len(data) // 2])
    assert response.status_code == 422
    assert "truncated or corrupt" in response.json()["error"]["message"]
    assert assess(api, encode_image(RED)).status_code == 200


def test_wrong_field_name_names_the_missing_field(api):
    response = assess(api, encode_image(RED), field="image")
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["photo"]


def test_decompression_bomb_is_rejected_before_decoding(api):
    bomb = encode_image((0, 0, 0), size=(10_000, 10_000), fmt="PNG")
    assert len(bomb) < 1_000_000
    response = assess(api, bomb, filename="bomb.png")
    assert response.status_code == 413
    assert "100000000 pixels" in response.json()["error"]["message"]


def test_oversized_body_is_refused_with_413(api):
    response = assess(api, b"\xff\xd8\xff" + b"0" * (17 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"


def test_a_photo_over_a_megabyte_is_taken_in_memory_without_a_temporary_file(api, monkeypatch):
    """No temporary file on the photo intake: BentoML writes one per `Path` input, and Starlette
    spools a file part to disk past 1 MB; the photo is read from its in-memory form part instead."""
    import tempfile

    import numpy as np
    from PIL import Image

    written = []
    named, rollover = tempfile.NamedTemporaryFile, tempfile.SpooledTemporaryFile.rollover
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", lambda *a, **k: written.append("named") or named(*a, **k))
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", lambda f: written.append("spooled") or rollover(f))
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (800, 900, 3), dtype=np.uint8)).save(buffer, "PNG")
    assert buffer.tell() > 2 * 1024 * 1024
    response = assess(api, buffer.getvalue(), filename="site.png")
    assert response.status_code == 200, response.text
    assert written == []


def test_a_file_input_taken_in_memory_accepts_only_an_upload():
    from pathlib import PurePosixPath

    from pydantic import TypeAdapter, ValidationError

    from serving.multipart import UploadedFile

    for value in ("http://127.0.0.1:9/secret.jpg", b"\xff\xd8\xff", PurePosixPath("/etc/passwd")):
        with pytest.raises(ValidationError, match=r"must be an uploaded file \(URLs are not fetched\)"):
            TypeAdapter(UploadedFile).validate_python(value)


def test_too_long_note_is_rejected(api):
    response = assess(api, encode_image(RED), note="x" * 2001)
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["note"]


def test_health_and_openapi(api):
    # /metrics needs the served process's Prometheus setup: tests/serving/test_server_e2e.py checks it.
    assert api.get("/livez").status_code == 200
    assert api.get("/readyz").status_code == 200
    spec = api.get("/docs.json").json()
    assert "/v1/photos/assess" in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/v1/photos/assess"]["post"]["requestBody"]["content"]


def test_photo_given_as_url_text_is_not_fetched(api):
    response = api.post("/v1/photos/assess", data={"photo": "http://127.0.0.1:9/secret.jpg"})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["photo"]
    assert "URLs are not fetched" in response.json()["detail"][0]["msg"]


def test_json_body_naming_a_server_path_is_refused(api):
    response = api.post("/v1/photos/assess", json={"photo": "/etc/passwd"})
    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["detail"][0]["msg"]


def test_numeric_site_id_stays_text(api):
    body = assess(api, encode_image(GREY), site_id="00123").json()
    assert body["metadata"]["site_id"] == "00123"


def test_reporter_is_kept_only_as_a_stable_pseudonym(api):
    reporter = "张三 13800000000"
    body = assess(api, encode_image(GREY), reporter=reporter).json()
    pseudonym = body["metadata"]["reporter"]
    assert pseudonym and "13800000000" not in pseudonym and "张三" not in pseudonym
    assert assess(api, encode_image(GREY), reporter=reporter).json()["metadata"]["reporter"] == pseudonym
    case = api.get(f"/v1/review/{body['photo_id']}")
    assert case.status_code == 200
    at = case.text.find("13800000000")
    assert at == -1, case.text[max(0, at - 200) : at + 40]
    assert pseudonym in case.text


def test_a_full_photo_queue_answers_503_with_retry_after_and_stores_nothing(api, monkeypatch):
    from serving.batching import MicroBatcher, QueueFull

    before = api.get("/v1/review/queue", params={"status": "all"}).json()["total"]

    async def full(self, image):
        raise QueueFull("256 photos are already waiting for the model")

    monkeypatch.setattr(MicroBatcher, "submit", full)
    response = assess(api, encode_image(RED))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == {"field": "photo", "message": "the photo model is busy; retry in a second"}
    monkeypatch.undo()
    assert api.get("/v1/review/queue", params={"status": "all"}).json()["total"] == before
    assert assess(api, encode_image(RED)).status_code == 200


# --- one settings object, the typed assessment, one error handler (issue 13) ---

SERVICE_FILES = (
    "service.py",
    "photo.py",
    "batching.py",
    "images.py",
    "limits.py",
    "multipart.py",
    "reload.py",
    "logging_setup.py",
    "metrics.py",
    "docs.py",
    "openapi_document.py",
    "api_models.py",
    "pipeline.py",
    "routes.py",
    "errors.py",
)


def test_only_settings_py_names_ankang_variables():
    import ast

    from tests.conftest import PROJECT_ROOT

    for name in SERVICE_FILES:
        tree = ast.parse((PROJECT_ROOT / "serving" / name).read_text(encoding="utf-8"))
        named = [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("ANKANG_")
        ]
        assert named == [], f"serving/{name} reads {named}; add a ServingSettings field instead"


def test_the_service_is_built_from_the_settings_it_is_given(toy_photo_model, tmp_path):
    from serving.service import Ankang
    from serving.settings import ServingSettings

    settings = ServingSettings(
        photo_model_dir=toy_photo_model,
        data_dir=tmp_path,
        max_batch_size=3,
        max_queue=5,
        decode_slots=2,
        reload_poll_seconds=600,
    )
    service = Ankang.inner(settings=settings)
    try:
        batcher = service.photo.current.batcher
        assert (batcher.max_batch_size, batcher.max_queue) == (3, 5)
        assert service.decode_slots._value == 2
        assert service.photo.model_dir == toy_photo_model
        assert str(service.review_store.engine.url) == f"sqlite:///{tmp_path / 'review' / 'review.db'}"
    finally:
        service.photo.stop(), service.risk.stop(), service.review_store.close()


def test_the_store_keeps_the_assessment_as_the_model_made_it(tmp_path):
    from serving.photo import build_assessment
    from serving.review.store import ReviewStore

    store = ReviewStore(database_url=f"sqlite:///{tmp_path / 'r.db'}", photo_dir=tmp_path / "photos")
    assessment = build_assessment(
        {"fire_smoke": 0.9, "wet_floor": 0.7, "missing_helmet": 0.1},
        {"fire_smoke": 0.5, "wet_floor": 0.6, "missing_helmet": 0.4},
        model_name="hazard_photo",
        model_version="t-9",
    )
    data = encode_image(RED)
    import io

    from PIL import Image

    store.record_assessment(
        photo_id="a" * 32,
        data=data,
        image=Image.open(io.BytesIO(data)),
        assessment=assessment,
        metadata={"site_id": "s-1"},
    )
    case = store.case("a" * 32)
    assert (case["status"], case["triage"]) == ("open", "urgent")
    assert [item["type"] for item in case["flagged"]] == ["fire_smoke", "wet_floor"]
    assert case["flagged"][1]["threshold"] == 0.6
    assert case["model"] == {"name": "hazard_photo", "version": "t-9"}
    store.close()


def test_one_handler_answers_input_errors_of_sync_and_async_endpoints():
    import asyncio

    from runtime.errors import InputError
    from serving.batching import QueueFull
    from serving.service import client_errors_answered

    @client_errors_answered
    def sync_endpoint():
        raise InputError("enterprises", "must be a non-empty list")

    @client_errors_answered
    async def async_endpoint():
        raise QueueFull("9 photos are already waiting")

    assert sync_endpoint().status_code == 422
    busy = asyncio.run(async_endpoint())
    assert (busy.status_code, busy.headers["retry-after"]) == (503, "1")


# --- logs: a client error is one info line, a server error keeps its traceback (issue 14.7) ---


def captured(api, caplog, requests):
    import logging

    ankang = logging.getLogger("ankang")  # does not propagate: JSON lines go to its own handler
    ankang.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO):
            statuses = [request().status_code for request in requests]
    finally:
        ankang.removeHandler(caplog.handler)
    return statuses, caplog.records


def test_client_errors_log_one_info_line_each_and_no_traceback(api, caplog):
    import logging

    statuses, records = captured(
        api,
        caplog,
        [
            lambda: assess(api, encode_image(RED), field="image"),  # BentoML's validation error: was ERROR + traceback
            lambda: assess(api, encode_image(RED), note="x" * 2001),
            lambda: assess(api, b"%PDF-1.7"),
        ],
    )
    assert statuses == [400, 400, 415]
    assert [(r.name, r.levelname) for r in records if r.levelno >= logging.WARNING] == []
    assert [r.getMessage() for r in records if r.exc_info or r.exc_text] == []
    assert [(r.levelname, r.status) for r in records if r.name == "ankang.request"] == [("INFO", s) for s in statuses]


def test_a_server_error_keeps_its_traceback(api, caplog, monkeypatch):
    from serving.batching import MicroBatcher

    async def broken(self, image):
        raise RuntimeError("onnxruntime failed")

    monkeypatch.setattr(MicroBatcher, "submit", broken)
    statuses, records = captured(api, caplog, [lambda: assess(api, encode_image(RED))])
    assert statuses == [500]
    errors = [r for r in records if r.levelname == "ERROR" and r.exc_info]
    assert [str(r.exc_info[1]) for r in errors] == ["onnxruntime failed"]


def test_the_photo_model_takes_its_session_settings_from_serving_settings(tmp_path, monkeypatch):
    from serving.photo import PhotoModel
    from serving.settings import ServingSettings
    from tests.toy_models import write_toy_photo_model

    monkeypatch.setenv("ANKANG_ORT_THREADS", "2")  # read by ServingSettings.from_env only, never by the model
    model = PhotoModel(
        write_toy_photo_model(tmp_path / "toy"), settings=ServingSettings(ort_threads=1, ort_spinning=True)
    )
    options = model.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_a_batch_of_several_photos_runs_on_this_process_share_of_the_cores(tmp_path, monkeypatch):
    import numpy as np

    from serving.photo import PhotoModel
    from serving.settings import ServingSettings
    from tests.toy_models import write_toy_photo_model

    model_dir = write_toy_photo_model(tmp_path / "toy")
    model = PhotoModel(model_dir, settings=ServingSettings(ort_threads=2), processes=2)
    assert model.session.get_session_options().intra_op_num_threads == 2
    assert model.busy_session.get_session_options().intra_op_num_threads == 1
    ran = []
    for name in ("session", "busy_session"):
        session = getattr(model, name)
        monkeypatch.setattr(session, "run", lambda *args, run=session.run, name=name: ran.append(name) or run(*args))
    images = np.random.default_rng(0).integers(0, 256, (2, 3, *model.card.size), dtype=np.uint8)
    alone, batched = model.run_batch(images[:1]), model.run_batch(images)
    assert ran == ["session", "busy_session"]
    np.testing.assert_allclose(alone[0].probabilities, batched[0].probabilities, rtol=1e-5, atol=1e-6)
    one_process = PhotoModel(model_dir, settings=ServingSettings(ort_threads=2))
    assert one_process.busy_session is one_process.session
