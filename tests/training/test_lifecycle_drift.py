"""Drift: the population stability index, and `ankang drift photo|risk` on a review store and on
profile files with a known shift."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from ankang_cli import main
from tests.toy_models import PHOTO_LABELS, write_toy_photo_model
from training.lifecycle.drift import binary_psi, feature_drift, psi


def test_psi_is_zero_for_equal_shares_and_matches_the_formula():
    assert psi(np.array([30, 70]), np.array([3, 7])) == pytest.approx(0.0)
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(expected)
    assert binary_psi(0.1, 0.5) > 0.25 > binary_psi(0.1, 0.12)


def test_feature_drift_flags_a_shifted_number_and_a_new_category_mix(rng):
    reference = pd.DataFrame(
        {
            "hours": rng.normal(40, 10, 5000),
            "same": rng.normal(0, 1, 5000),
            "industry": rng.choice(["mining", "retail"], 5000, p=[0.2, 0.8]),
        }
    )
    recent = pd.DataFrame(
        {
            "hours": rng.normal(55, 10, 3000),
            "same": rng.normal(0, 1, 3000),
            "industry": rng.choice(["mining", "retail"], 3000, p=[0.6, 0.4]),
        }
    )
    recent.loc[:299, "same"] = np.nan  # 10 % missing is its own bin
    rows = {row.name: row for row in feature_drift(reference, recent, categorical={"industry": ["mining", "retail"]})}
    assert rows["hours"].level == "MAJOR" and rows["industry"].level == "MAJOR"
    # only the missing share moved (0 -> 10 %, the reference share clipped at 1e-4): 0.1 * ln(0.1 / 1e-4) ≈ 0.69
    assert 0.6 < rows["same"].psi < 0.8
    assert rows["industry"].reference == "mode retail" and rows["industry"].recent == "mode mining"


@pytest.fixture
def photo_model(tmp_path):
    """The toy photo model with test-split counts in its card: fire_smoke flagged on 10 %, wet_floor 5 %."""
    model_dir = write_toy_photo_model(tmp_path / "hazard_photo")
    card = json.loads((model_dir / "card.json").read_text())
    rates = {"fire_smoke": 10, "wet_floor": 5}
    card["metrics"] = {"test": {flag: {"tp": rates.get(flag, 2), "fp": 0, "n": 100} for flag in PHOTO_LABELS}}
    (model_dir / "card.json").write_text(json.dumps(card))
    return model_dir


def _review_store(path, *, recent_fire: int, recent: int, before: int) -> str:
    import sqlalchemy as sa

    from serving.review.schema import cases, metadata

    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = []
    for index in range(recent + before):
        fire = index < recent_fire
        wet = index % 20 == 0
        flagged = [flag for flag, on in (("fire_smoke", fire), ("wet_floor", wet)) if on]
        created = now - dt.timedelta(days=1 if index < recent else 40, minutes=index)
        rows.append(
            {
                "photo_id": f"p{index}",
                "photo_sha256": "0" * 64,
                "created_at": created,
                "status": "open" if flagged else "clear",
                "triage": "urgent" if fire else ("review" if flagged else "clear"),
                "severity_rank": 0,
                "top_probability": 0.5,
                "model_name": "hazard_photo",
                "model_version": "toy-1",
                "labels": list(PHOTO_LABELS),
                "probabilities": {},
                "thresholds": {},
                "flagged": flagged,
                "width": 10,
                "height": 10,
                "dhash": "0" * 16,
                "group_id": f"p{index}",
            }
        )
    with engine.begin() as connection:
        connection.execute(cases.insert(), rows)
    engine.dispose()
    return url


def test_photo_drift_reports_flag_rates_triage_mix_and_plots(photo_model, tmp_path, capsys):
    url = _review_store(tmp_path / "review.db", recent_fire=50, recent=100, before=60)
    report = tmp_path / "drift"
    assert (
        main(
            [
                "drift",
                "photo",
                "--model",
                str(photo_model),
                "--database-url",
                url,
                "--report",
                str(report),
                "--days",
                "30",
            ]
        )
        == 0
    )
    payload = json.loads((report / "drift.json").read_text())
    flags = {row["name"]: row for row in payload["sections"]["flag rate: released card (test split) vs service"]}
    assert flags["fire_smoke"]["reference"] == "0.100" and flags["fire_smoke"]["recent"] == "0.500"
    assert flags["fire_smoke"]["level"] == "MAJOR" and flags["wet_floor"]["level"] == "stable"
    triage = next(rows for heading, rows in payload["sections"].items() if heading.startswith("triage"))
    assert triage[0]["level"] == "MAJOR"  # 0 % urgent before, 50 % urgent now
    assert payload["summary"]["recent photos"] == 100 and payload["summary"]["photos in the window before"] == 60
    assert {p.name for p in report.glob("*.png")} == {"flag_rates.png", "triage.png"}
    assert "fire_smoke" in (report / "drift.md").read_text() and "MAJOR" in capsys.readouterr().out


def test_photo_drift_without_a_review_store_says_what_to_do(photo_model, tmp_path, capsys):
    missing = f"sqlite:///{tmp_path}/no/such/dir/review.db"
    assert (
        main(
            [
                "drift",
                "photo",
                "--model",
                str(photo_model),
                "--database-url",
                missing,
                "--report",
                str(tmp_path / "drift"),
            ]
        )
        == 2
    )
    assert "cannot read the review store" in capsys.readouterr().err


def test_risk_drift_finds_the_shifted_feature_and_nothing_else(tmp_path):
    from training.risk.config import GeneratorConfig, RiskModelConfig
    from training.risk.generator import generate
    from training.risk.train import train_risk

    model_dir = tmp_path / "labor_risk"
    train_risk(RiskModelConfig(n_estimators=30, n_jobs=1, out=model_dir), generator=GeneratorConfig(rows=3000))
    recent = generate(GeneratorConfig(rows=3000, seed=77)).drop(columns=["tier"])
    recent["avg_monthly_overtime_hours"] = np.minimum(recent["avg_monthly_overtime_hours"] * 2.5 + 20, 400)
    recent.to_csv(tmp_path / "recent.csv", index=False)
    report = tmp_path / "drift"
    assert (
        main(
            [
                "drift",
                "risk",
                "--model",
                str(model_dir),
                "--data",
                str(tmp_path / "recent.csv"),
                "--report",
                str(report),
            ]
        )
        == 0
    )
    payload = json.loads((report / "drift.json").read_text())
    features = payload["sections"]["features (highest PSI first)"]
    assert features[0]["name"] == "avg_monthly_overtime_hours" and features[0]["level"] == "MAJOR"
    assert all(row["level"] == "stable" for row in features[1:])
    assert payload["sections"]["predicted tier"][0]["psi"] > 0.01  # more overtime, higher predicted tiers
    assert (report / "feature_psi.png").stat().st_size > 1000
