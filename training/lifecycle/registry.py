"""The MLflow model registry: register a trained model directory, resolve aliases, fetch versions.

A version's files: the ONNX flavour logged by `mlflow.onnx.log_model` (bytes unchanged) and the
card as the run artifact `release/card.json` (tag `card_artifact`). Fetching a version checks
ONNX parity: the registered model.onnx's sha256 must equal its card's `sha256`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runtime.modeldir import ModelDir, file_sha256
from training.lifecycle.kinds import ModelKind

CHAMPION, CHALLENGER = "champion", "challenger"
CARD_ARTIFACT = "release/card.json"


class ParityError(RuntimeError):
    """A registered model.onnx does not match the sha256 in its card."""


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str


def client():
    from mlflow import MlflowClient

    from training.tracking import configure

    configure()
    return MlflowClient()


def register_model_dir(kind: ModelKind, model_dir: Path, *, alias: str | None = CHALLENGER) -> Registered:
    """Inside an active MLflow run: log model_dir's ONNX (signature + input example) and card,
    register a new version of `kind.registered_name` and point `alias` at it."""
    import mlflow

    from training.tracking import log_onnx_model

    card = kind.card(model_dir)
    sha256 = file_sha256(Path(model_dir) / "model.onnx")
    if sha256 != card.get("sha256"):
        raise ParityError(
            f"{model_dir}/model.onnx has sha256 {sha256} but its card says {card.get('sha256')}; "
            "retrain or re-export before registering"
        )
    info = log_onnx_model(
        Path(model_dir) / "model.onnx",
        input_example=kind.input_example(card),
        registered_name=kind.registered_name,
        metadata={"card_version": str(card.get("version")), "sha256": sha256},
    )
    mlflow.log_artifact(str(Path(model_dir) / "card.json"), artifact_path="release")
    run_id = mlflow.active_run().info.run_id
    version = str(info.registered_model_version)
    tags = {
        "sha256": sha256,
        "card_version": str(card.get("version")),
        "card_artifact": CARD_ARTIFACT,
        "data_fingerprint": kind.fingerprint_text(card),
    }
    tags.update({key: str(value) for key, value in kind.headline(card).items()})
    registry = client()
    for key, value in tags.items():
        registry.set_model_version_tag(kind.registered_name, version, key, value)
    if alias:
        registry.set_registered_model_alias(kind.registered_name, alias, version)
    return Registered(name=kind.registered_name, version=version, run_id=run_id)


def version_by_alias(kind: ModelKind, alias: str):
    """The ModelVersion `alias` points at, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version_by_alias(kind.registered_name, alias)
    except MlflowException:
        return None


def get_version(kind: ModelKind, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version(kind.registered_name, str(version))
    except MlflowException as error:
        raise LookupError(f"{kind.registered_name} has no version {version}; see `ankang models list`") from error


def fetch_version(kind: ModelKind, model_version, destination: Path) -> ModelDir:
    """Download a version into destination/ as model.onnx + card.json, after the parity check."""
    import mlflow

    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ankang-fetch-") as scratch:
        flavour = Path(
            mlflow.artifacts.download_artifacts(
                f"models:/{kind.registered_name}/{model_version.version}", dst_path=str(Path(scratch) / "model")
            )
        )
        card = Path(
            mlflow.artifacts.download_artifacts(
                f"runs:/{model_version.run_id}/{CARD_ARTIFACT}", dst_path=str(Path(scratch) / "card")
            )
        )
        expected = json.loads(card.read_text(encoding="utf-8")).get("sha256")
        actual = file_sha256(flavour / "model.onnx")
        if actual != expected:
            raise ParityError(
                f"{kind.registered_name} version {model_version.version}: registered model.onnx has "
                f"sha256 {actual} but its card says {expected}; the version cannot be released"
            )
        shutil.copyfile(flavour / "model.onnx", destination / "model.onnx")
        shutil.copyfile(card, destination / "card.json")
    return ModelDir.load(destination)


def versions(kind: ModelKind) -> list:
    """Every registered version of the kind, newest first ([] when none was registered yet)."""
    found = client().search_model_versions(f"name='{kind.registered_name}'")
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def aliases(kind: ModelKind) -> dict[str, str]:
    """{alias: version} of the registered model ({} when it does not exist)."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(client().get_registered_model(kind.registered_name).aliases)
    except MlflowException:
        return {}
