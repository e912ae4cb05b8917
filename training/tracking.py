"""MLflow helpers: where runs go, how configs, cards and ONNX models are logged.

The default store is SQLite inside the project (`sqlite:///mlflow.db`, artifacts in
`mlartifacts/`, both git-ignored); `MLFLOW_TRACKING_URI` overrides it. A SQLite store's
artifacts go next to its database file, so a test's temporary store stays in its temp dir.
Only training code imports this module: serving never imports MLflow.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime.paths import PROJECT_ROOT

DEFAULT_TRACKING_URI = f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
DEFAULT_EXPERIMENT = "ankang"
MAX_PARAM_CHARS = 6000


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def artifact_root(uri: str) -> Path | None:
    """`<folder of the SQLite file>/mlartifacts` for a SQLite store; None lets a server decide."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return Path(uri[len(prefix) :]).resolve().parent / "mlartifacts"


def configure(*, experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Point MLflow (tracking and registry) at `tracking_uri()`, create the experiment if needed;
    returns its id."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # promote's output stays a table
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    root = artifact_root(uri)
    location = (root / experiment).as_uri() if root is not None else None
    return mlflow.create_experiment(experiment, artifact_location=location)


def flatten(values: dict, *, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested dicts as dotted keys: {"test": {"fire": {"roc_auc": 0.9}}} -> ("test.fire.roc_auc", 0.9)."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, prefix=f"{name}.")
        else:
            yield name, value


def params_of(config: dict) -> dict[str, str]:
    """MLflow params (strings of at most 6000 characters) for a training config."""
    params = {}
    for key, value in flatten(config):
        text = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, (list, tuple)) else str(value)
        params[key] = text[:MAX_PARAM_CHARS]
    return params


def numeric_metrics(metrics: dict, *, prefix: str = "") -> dict[str, float]:
    """Every finite number in a (nested) metrics dict, dotted keys; None, text and lists skipped."""
    result = {}
    for key, value in flatten(metrics, prefix=prefix):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            result[_metric_key(key)] = float(value)
    return result


def _metric_key(key: str) -> str:
    """MLflow metric names allow letters, digits, `_ - . /` and spaces only."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in key)


class EpochLogger:
    """An `on_epoch_end(epoch, metrics)` callback that logs each numeric metric at step=epoch
    under `epoch.<name>`; `calls` tells whether the trainer used it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, epoch: int, metrics: dict) -> None:
        import mlflow

        self.calls += 1
        mlflow.log_metrics(numeric_metrics(metrics, prefix="epoch."), step=int(epoch))


def log_json(payload: Any, artifact_file: str) -> None:
    import mlflow

    mlflow.log_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", artifact_file)


def log_onnx_model(model_path: Path, *, input_example: dict, registered_name: str | None, metadata: dict | None = None):
    """Log model.onnx (bytes unchanged: no external data) with a signature inferred from running
    it on `input_example`; registers a new version of `registered_name` when given. Returns
    MLflow's ModelInfo."""
    import mlflow.onnx
    import onnx
    from mlflow.models import infer_signature

    from runtime.session import create_session

    session = create_session(model_path)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, input_example)))
    return mlflow.onnx.log_model(
        onnx.load(str(model_path)),
        name="model",
        signature=infer_signature(input_example, outputs),
        input_example=input_example,
        registered_model_name=registered_name,
        save_as_external_data=False,
        onnx_execution_providers=["CPUExecutionProvider"],
        metadata=metadata or {},
    )
