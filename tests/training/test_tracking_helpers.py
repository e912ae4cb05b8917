"""training.tracking: where runs go, and how configs and nested metrics become MLflow params/metrics."""

import math
from pathlib import Path

from training import tracking


def test_default_store_is_sqlite_in_the_project_and_env_overrides(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == f"sqlite:///{tracking.PROJECT_ROOT / 'mlflow.db'}"
    assert tracking.artifact_root(tracking.tracking_uri()) == tracking.PROJECT_ROOT / "mlartifacts"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/runs.db")
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path}/runs.db"
    assert tracking.artifact_root(tracking.tracking_uri()) == tmp_path.resolve() / "mlartifacts"
    assert tracking.artifact_root("http://mlflow.internal:5000") is None


def test_numeric_metrics_flatten_nested_cards_and_skip_what_mlflow_cannot_store():
    card_metrics = {
        "test": {
            "fire_smoke": {
                "roc_auc": 0.91,
                "average_precision": None,
                "n": 40,
                "per_source": {"cair-fire-normal": {"roc_auc": 0.88}, "xiapinquan fire!": {"roc_auc": None}},
            }
        },
        "qwk": 0.8,
        "confusion": [[1, 2], [3, 4]],
        "ok": True,
        "bad": math.nan,
        "note": "text",
    }
    metrics = tracking.numeric_metrics(card_metrics)
    assert metrics == {
        "test.fire_smoke.roc_auc": 0.91,
        "test.fire_smoke.n": 40.0,
        "test.fire_smoke.per_source.cair-fire-normal.roc_auc": 0.88,
        "qwk": 0.8,
    }
    assert tracking.numeric_metrics({"a b?": 1}, prefix="epoch.") == {"epoch.a b_": 1.0}


def test_params_are_strings_lists_as_json_and_long_values_cut():
    params = tracking.params_of({"data": [Path("/a"), "/b"], "lr": 0.001, "nested": {"rows": 5}, "long": "x" * 7000})
    assert params["data"] == '["/a", "/b"]'
    assert params["lr"] == "0.001" and params["nested.rows"] == "5"
    assert len(params["long"]) == tracking.MAX_PARAM_CHARS


def test_epoch_logger_logs_each_epoch_at_its_step(monkeypatch, tmp_path):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    experiment = tracking.configure(experiment="epochs")
    logger = tracking.EpochLogger()
    with mlflow.start_run(experiment_id=experiment) as run:
        logger(1, {"train_loss": 0.7, "val_mean_roc_auc": 0.6, "seconds": 3})
        logger(2, {"train_loss": 0.5, "val_mean_roc_auc": 0.7, "seconds": 3})
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "epoch.val_mean_roc_auc")
    assert [(m.step, m.value) for m in history] == [(1, 0.6), (2, 0.7)]
    assert logger.calls == 2
    experiment_info = mlflow.get_experiment(experiment)
    assert experiment_info.artifact_location == (tmp_path.resolve() / "mlartifacts" / "epochs").as_uri()
