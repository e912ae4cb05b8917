"""/metrics: what operators watch, with route labels that a path scan cannot multiply (issue 14.8)."""

from __future__ import annotations

import secrets

import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving import metrics
from tests.serving.conftest import encode_image
from tests.serving.test_risk_scorer import low_risk


def scrape(api) -> dict[str, dict[tuple, float]]:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_photos_flags_batches_and_models_are_counted(api):
    before = scrape(api)
    assert (
        api.post("/v1/photos/assess", files={"photo": ("r.jpg", encode_image((255, 0, 0)), "image/jpeg")}).status_code
        == 200
    )
    after = scrape(api)
    for name, labels in [
        ("ankang_photos_assessed_total", {"triage": "urgent"}),
        ("ankang_photo_flags_total", {"hazard": "fire_smoke"}),
        ("ankang_photo_batch_size_count", {}),
        ("ankang_http_requests_total", {"route": "/v1/photos/assess", "method": "POST", "status_class": "2xx"}),
    ]:
        assert value(after, name, **labels) == value(before, name, **labels) + 1, name
    assert value(after, "ankang_photos_assessed_total", triage="clear") == value(
        before, "ankang_photos_assessed_total", triage="clear"
    )
    assert value(after, "ankang_model_info", model="hazard_photo", version="toy-1") == 1
    assert value(after, "ankang_photo_queue_depth") == 0
    assert "ankang_http_request_duration_seconds_bucket" in after


def test_review_cases_are_counted_by_status_from_the_store(api, monkeypatch):
    monkeypatch.setattr(metrics, "REVIEW_COUNT_SECONDS", 0.0)  # no caching between these two scrapes
    open_before = value(scrape(api), "ankang_review_cases", status="open")
    api.post("/v1/photos/assess", files={"photo": ("r.jpg", encode_image((255, 0, 0)), "image/jpeg")})
    assert value(scrape(api), "ankang_review_cases", status="open") == open_before + 1
    assert ("status", "dismissed") in {label for key in scrape(api)["ankang_review_cases"] for label in key}


def test_enterprises_scored_are_counted_by_tier(api):
    before = value(scrape(api), "ankang_enterprises_scored_total", tier="1")
    response = api.post("/v1/enterprises/score", json={"enterprises": [low_risk("A-1"), low_risk("A-2")]})
    assert [result["tier"] for result in response.json()["results"]] == [1, 1]
    assert value(scrape(api), "ankang_enterprises_scored_total", tier="1") == before + 2


def test_a_path_scan_adds_no_series(api):
    scrape(api)
    api.get("/no-such-page")  # "other" exists from now on
    series_before = len(scrape(api)["ankang_http_requests_total"])
    paths = [f"/{secrets.token_hex(4)}/{secrets.token_hex(3)}" for _ in range(100)]
    paths += [f"/v1/review/{secrets.token_hex(16)}/nothing/{index}" for index in range(50)]
    for path in paths:
        assert api.get(path).status_code in (401, 404, 405)
    text = api.get("/metrics").text
    assert not [path for path in paths if path in text]
    assert len(scrape(api)["ankang_http_requests_total"]) == series_before


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/v1/review/queue", "/v1/review/queue"),
        ("/v1/review/0123abcd/heatmap/fire_smoke", "/v1/review/{photo_id}/heatmap/{hazard}"),
        ("/v1/review/0123abcd", "/v1/review/{photo_id}"),
        ("/v1/review/0123abcd/a/b/c", "other"),
        ("/review/static/review.js", "/review/static/*"),
        ("/docs/assets/swagger-ui.css", "/docs/*"),
        ("/wp-login.php", "other"),
    ],
)
def test_route_labels_are_templates(path, label):
    from serving.service import ROUTE_LABELS

    assert ROUTE_LABELS(path, "GET") == label
