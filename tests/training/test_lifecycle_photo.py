"""The hazard-photo lifecycle end to end on tiny real data (64 px, 2 epochs, ~100 photos): tracked
`ankang train photo` with two dataset folders (an "old" set and reviewed photos), per-epoch and
per-source metrics in MLflow, first promotion, and a deliberately crippled challenger (the
champion's probabilities inverted) refused with the comparison table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from ankang_cli import main
from runtime.modeldir import ModelDir, file_sha256

pytestmark = pytest.mark.slow
TAKE = {  # source: photos per split (train, val, test)
    "old": {"panly23-ppe": (16, 5, 6), "cair-fire-normal": (16, 5, 8), "xiapinquan-fire": (8, 3, 4)},
    "reviews": {"messy-room": (8, 3, 4), "xiapinquan-fire": (4, 2, 2), "panly23-ppe": (4, 2, 2)},
}


def _subset(photo_set: Path, folder: Path, take: dict, *, skip: set[str], rng, source: str | None) -> set[str]:
    manifest = pd.read_csv(photo_set / "manifest.csv", dtype=str)
    parts = []
    for name, counts in take.items():
        for split, count in zip(("train", "val", "test"), counts):
            pool = manifest[(manifest["source"] == name) & (manifest["split"] == split) & ~manifest["image"].isin(skip)]
            parts.append(pool.iloc[np.sort(rng.choice(len(pool), size=count, replace=False))])
    frame = pd.concat(parts)
    if source:  # reviewed photos come back from the service under their own source name
        frame = frame.assign(source=source)
    folder.mkdir(parents=True)
    (folder / "images").symlink_to(photo_set / "images")
    frame.to_csv(folder / "manifest.csv", index=False)
    return set(frame["image"])


@pytest.fixture(scope="module")
def photo_store(photo_set, tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle-photo")
    rng = np.random.default_rng(20261126)
    used = _subset(photo_set, root / "old", TAKE["old"], skip=set(), rng=rng, source=None)
    _subset(photo_set, root / "reviews", TAKE["reviews"], skip=used, rng=rng, source="review-export")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        assert (
            main(
                [
                    "train",
                    "photo",
                    "--data",
                    str(root / "old"),
                    "--data",
                    str(root / "reviews"),
                    "--out",
                    str(root / "trained"),
                    "--image-size",
                    "64",
                    "--crop-source-size",
                    "0",
                    "--final-size",
                    "0",
                    "--epochs",
                    "2",
                    "--batch-size",
                    "16",
                    "--workers",
                    "1",
                    "--threads",
                    "2",
                    "--cache-dir",
                    str(root / "cache"),
                    "--seed",
                    "17",
                ]
            )
            == 0
        )
        yield root


def _promote(root: Path, *extra: str) -> int:
    return main(
        [
            "promote",
            "photo",
            "--data",
            str(root / "old"),
            "--data",
            str(root / "reviews"),
            "--models-dir",
            str(root / "models"),
            "--report",
            str(root / "report"),
            "--workers",
            "1",
            "--cache-dir",
            str(root / "cache"),
            *extra,
        ]
    )


def _client():
    from training.lifecycle.registry import client

    return client()


def test_tracked_photo_run_logs_epochs_per_source_metrics_fingerprint_and_model(photo_store):
    import mlflow

    version = _client().get_model_version("hazard-photo", "1")
    run = _client().get_run(version.run_id)
    card = json.loads((photo_store / "trained" / "card.json").read_text())
    history = _client().get_metric_history(run.info.run_id, "epoch.val_mean_roc_auc")
    assert [m.step for m in history] == [1, 2]
    assert json.loads(run.data.params["data"]) == [str(photo_store / "old"), str(photo_store / "reviews")]
    assert run.data.tags["data_fingerprint"] == card["data"]["fingerprint"]
    fire = card["metrics"]["test"]["fire_smoke"]["roc_auc"]
    assert run.data.metrics["test.fire_smoke.roc_auc"] == pytest.approx(fire)
    assert any(".per_source.review-export." in key for key in run.data.metrics)  # new data measured apart
    assert any(".per_source.cair-fire-normal." in key for key in run.data.metrics)  # and old data too
    info = mlflow.models.get_model_info("models:/hazard-photo/1")
    assert tuple(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == (-1, 3, 64, 64)
    assert {Path(a.path).name for a in _client().list_artifacts(run.info.run_id, "report")} == {
        "summary.md",
        "summary.html",
        "metrics.png",
    }


def test_first_photo_promotion_releases_the_challenger(photo_store):
    assert _promote(photo_store) == 0
    released = ModelDir.load(photo_store / "models" / "hazard_photo")
    assert released.card["registry"]["version"] == "1"
    assert released.card["sha256"] == file_sha256(photo_store / "trained" / "model.onnx")


def _inverted(model_dir: Path, out: Path) -> Path:
    """The same network with probabilities replaced by 1 - p: every ROC AUC becomes 1 - AUC."""
    model = onnx.load(str(model_dir / "model.onnx"))
    for node in model.graph.node:
        node.output[:] = ["raw_probabilities" if name == "probabilities" else name for name in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"))
    model.graph.node.append(helper.make_node("Sub", ["one", "raw_probabilities"], ["probabilities"]))
    out.mkdir()
    onnx.save(model, str(out / "model.onnx"))
    card = json.loads((model_dir / "card.json").read_text())
    card.update(version=card["version"] + "-inverted", sha256=file_sha256(out / "model.onnx"))
    (out / "card.json").write_text(json.dumps(card))
    assert TensorProto.FLOAT  # the Sub keeps float32 outputs
    return out


def test_crippled_photo_challenger_is_refused_with_per_flag_table(photo_store, capsys):
    import mlflow

    from training.lifecycle.kinds import PHOTO
    from training.lifecycle.registry import register_model_dir
    from training.tracking import configure

    crippled = _inverted(photo_store / "models" / "hazard_photo", photo_store / "crippled")
    with mlflow.start_run(experiment_id=configure()):
        registered = register_model_dir(PHOTO, crippled)
    capsys.readouterr()
    assert _promote(photo_store) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "roc_auc fire_smoke" in out and "WORSE" in out
    assert ModelDir.load(photo_store / "models" / "hazard_photo").card["registry"]["version"] == "1"
    rows = json.loads((photo_store / "report" / "comparison.json").read_text())["rows"]
    fire = next(row for row in rows if row["metric"] == "roc_auc fire_smoke")
    assert fire["challenger"] == pytest.approx(1 - fire["champion"], abs=1e-4)
    assert registered.version == "2"
