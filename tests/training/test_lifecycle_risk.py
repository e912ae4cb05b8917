"""The risk model's lifecycle through the `ankang` CLI on a temporary MLflow store: tracked training
registers challengers; promote releases a not-worse challenger atomically, refuses a crippled one
with the comparison table and status 1, and --force releases it with a recorded override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ankang_cli import main
from runtime.modeldir import ModelDir

SMALL = ["--rows", "3000", "--n-estimators", "40", "--n-jobs", "1"]
CRIPPLED = ["--rows", "3000", "--n-estimators", "1", "--num-leaves", "2", "--n-jobs", "1"]
HELD_OUT = ["--rows", "2000", "--seed", "99"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A temp MLflow store and models dir with two registered versions: 1 good, 2 crippled."""
    root = tmp_path_factory.mktemp("lifecycle-risk")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        assert main(["train", "risk", *SMALL, "--out", str(root / "good")]) == 0
        assert main(["train", "risk", *CRIPPLED, "--out", str(root / "crippled")]) == 0
        yield root


def _client():
    from training.lifecycle.registry import client

    return client()


def _promote(store: Path, *extra: str) -> int:
    return main(
        ["promote", "risk", "--models-dir", str(store / "models"), "--report", str(store / "report"), *HELD_OUT, *extra]
    )


def test_tracked_training_logs_params_metrics_fingerprint_report_and_model(store):
    import mlflow

    version = _client().get_model_version("labor-risk", "1")
    run = _client().get_run(version.run_id)
    card = json.loads((store / "good" / "card.json").read_text())
    assert run.data.params["n_estimators"] == "40" and run.data.params["rows"] == "3000"
    assert run.data.metrics["qwk"] == pytest.approx(card["metrics"]["qwk"])
    assert run.data.metrics["per_tier_recall.5"] == pytest.approx(card["metrics"]["per_tier_recall"]["5"])
    assert run.data.tags["data_fingerprint"] == card["data"]["fingerprint"]
    report = {Path(a.path).name for a in _client().list_artifacts(run.info.run_id, "report")}
    assert report == {"summary.md", "summary.html", "metrics.png"}
    info = mlflow.models.get_model_info("models:/labor-risk/1")
    assert set(info.signature.inputs.input_names()) == set(card["feature_order"])
    assert info.saved_input_example_info is not None
    assert version.tags["sha256"] == card["sha256"]


def test_every_tracked_run_moves_challenger_to_its_new_version(store):
    assert str(_client().get_model_version_by_alias("labor-risk", "challenger").version) == "2"


def test_first_promotion_without_champion_or_release_promotes_and_writes_the_pair(store, capsys):
    assert _promote(store, "--version", "1") == 0
    released = ModelDir.load(store / "models" / "labor_risk")  # sha256 of the pair verified
    good = json.loads((store / "good" / "card.json").read_text())
    assert released.card["sha256"] == good["sha256"]
    assert released.card["registry"]["version"] == "1" and released.card["registry"]["forced"] is False
    assert str(_client().get_model_version_by_alias("labor-risk", "champion").version) == "1"
    assert "promoted without comparison" in capsys.readouterr().out
    assert not list((store / "models").glob(".labor_risk.*"))  # no staging leftovers


def test_crippled_challenger_is_refused_with_the_table_and_nothing_changes(store, capsys):
    _client().set_registered_model_alias("labor-risk", "champion", "1")
    before = (store / "models" / "labor_risk" / "card.json").read_bytes()
    assert _promote(store) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "qwk" in out and "WORSE" in out and "recall tier" in out
    assert (store / "models" / "labor_risk" / "card.json").read_bytes() == before
    assert str(_client().get_model_version_by_alias("labor-risk", "champion").version) == "1"
    assert "promotion.refused" in _client().get_model_version("labor-risk", "2").tags
    rows = json.loads((store / "report" / "comparison.json").read_text())["rows"]
    qwk = next(row for row in rows if row["metric"] == "qwk")
    assert qwk["verdict"] == "WORSE" and qwk["delta"] < -0.1
    assert (store / "report" / "deltas.png").stat().st_size > 1000


def test_force_releases_the_refused_challenger_and_records_the_override(store, capsys):
    _client().set_registered_model_alias("labor-risk", "champion", "1")
    assert _promote(store, "--force") == 0
    out = capsys.readouterr().out
    assert "FORCED" in out and "overrode" in out and "qwk" in out
    released = ModelDir.load(store / "models" / "labor_risk")
    assert released.card["registry"]["version"] == "2" and released.card["registry"]["forced"] is True
    assert "qwk" in _client().get_model_version("labor-risk", "2").tags["promotion.forced"]
    assert str(_client().get_model_version_by_alias("labor-risk", "champion").version) == "2"


def test_promoting_the_champion_again_says_so(store, capsys):
    champion = str(_client().get_model_version_by_alias("labor-risk", "champion").version)
    assert _promote(store, "--version", champion) == 2
    assert "already is the champion" in capsys.readouterr().out


def test_models_list_shows_versions_aliases_and_the_released_one(store, capsys):
    _client().set_registered_model_alias("labor-risk", "champion", "2")
    assert main(["models", "list", "--models-dir", str(store / "models")]) == 0
    out = capsys.readouterr().out
    assert "labor-risk" in out and "champion" in out and "challenger" in out and "yes" in out
    assert "hazard-photo" in out and "none:" in out  # no photo version registered in this store


def test_retrained_equal_challenger_passes_the_comparison_and_is_released(store, capsys):
    _client().set_registered_model_alias("labor-risk", "champion", "1")
    assert main(["train", "risk", *SMALL, "--out", str(store / "retrained")]) == 0  # LightGBM: same data, same model
    capsys.readouterr()
    assert _promote(store) == 0
    out = capsys.readouterr().out
    assert "PROMOTED" in out and "champion (version 1)" in out and "WORSE" not in out
    rows = json.loads((store / "report" / "comparison.json").read_text())["rows"]
    assert {row["verdict"] for row in rows} == {"ok"} and all(abs(row["delta"]) <= 0.005 for row in rows)
    assert ModelDir.load(store / "models" / "labor_risk").card["registry"]["version"] == "3"


def test_without_champion_the_released_model_is_the_baseline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    models = tmp_path / "models"
    assert main(["train", "risk", *SMALL, "--out", str(models / "labor_risk"), "--no-track"]) == 0  # released by hand
    assert main(["train", "risk", *CRIPPLED, "--out", str(tmp_path / "crippled")]) == 0
    capsys.readouterr()
    assert main(["promote", "risk", "--models-dir", str(models), "--report", str(tmp_path / "report"), *HELD_OUT]) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and f"released {models / 'labor_risk'}" in out


def test_dry_run_compares_without_changing_anything(store, capsys):
    _client().set_registered_model_alias("labor-risk", "champion", "1")
    before = (store / "models" / "labor_risk" / "card.json").read_bytes()
    tags_before = dict(_client().get_model_version("labor-risk", "2").tags)
    assert _promote(store, "--version", "2", "--dry-run") == 1
    assert "would be REFUSED" in capsys.readouterr().out
    assert (store / "models" / "labor_risk" / "card.json").read_bytes() == before
    assert dict(_client().get_model_version("labor-risk", "2").tags) == tags_before
    assert str(_client().get_model_version_by_alias("labor-risk", "champion").version) == "1"


def test_a_registered_model_that_no_longer_matches_its_card_is_not_released(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert main(["train", "risk", *CRIPPLED, "--out", str(tmp_path / "model")]) == 0
    model_id = _client().get_model_version("labor-risk", "1").source.split("/")[-1]
    (registered,) = (tmp_path / "mlartifacts").glob(f"*/models/{model_id}/artifacts/model.onnx")
    registered.write_bytes(registered.read_bytes() + b"\0")  # tampered after registration
    capsys.readouterr()
    assert main(["promote", "risk", "--models-dir", str(tmp_path / "models"), *HELD_OUT]) == 2
    assert "registered model.onnx has sha256" in capsys.readouterr().out
    assert not (tmp_path / "models" / "labor_risk").exists()


def test_train_writes_a_candidate_named_by_its_version_never_models(tmp_path, monkeypatch):
    from training.lifecycle import tracked

    monkeypatch.setattr(tracked, "CANDIDATES_DIR", tmp_path / "candidates")
    monkeypatch.setattr(tracked, "MODELS_DIR", tmp_path / "models")
    assert main(["train", "risk", *SMALL, "--no-track"]) == 0
    assert main(["train", "risk", *SMALL, "--no-track", "--out", str(tmp_path / "models" / "labor_risk")]) == 0
    written = sorted(path.name for path in (tmp_path / "candidates" / "labor_risk").iterdir())
    version = json.loads((tmp_path / "candidates" / "labor_risk" / written[0] / "card.json").read_text())["version"]
    assert written == [version, f"{version}-2"] and not (tmp_path / "models").exists()
