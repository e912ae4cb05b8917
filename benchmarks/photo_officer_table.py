"""Issue 22's table, measured the way an officer meets the model: every test photo's bytes through
serving's own path (decode_photo -> the card's preprocessing -> PhotoModel.run_batch -> assessment),
so boxes are those the API returns (at the card's operating thresholds, in the photo's pixels) and
triage is the API's.

    .venv/bin/python benchmarks/photo_officer_table.py --model-dir models/hazard_photo --model-dir var/candidates/x

Through the API of a running service instead (`make run`; each photo posted to /v1/photos/assess, the
answer's boxes, flags, probabilities and triage read back; each post opens a review case):

    .venv/bin/python benchmarks/photo_officer_table.py --model-dir models/hazard_photo \
        --url http://127.0.0.1:3000 --api-key "$(ankang keys create --role intake)"

Rows: heads without a helmet that get a box (IoU >= 0.5, each returned box matched at most once, by
score) and the share of drawn boxes that are right, per source and by head height; audit fire photos
triaged `urgent`; false heavy_machinery / poor_housekeeping on audit photos without them (also on
the construction photos whose machinery cell is an eye label); missing_helmet / missing_hi_vis ROC AUC
within each PPE source. Writes benchmarks/results/photo_officer_table-<version>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PHOTO_DATA, RESULTS_DIR, git_commit, machine  # noqa: E402

HEIGHTS = (("under_16px", 0, 16), ("16_to_24px", 16, 24), ("24_to_64px", 24, 64), ("over_64px", 64, 1e9))
AUC_SOURCES = {
    "missing_helmet": ("hardhat-workers", "panly23-ppe", "construction-site-safety"),
    "missing_hi_vis": ("panly23-ppe", "construction-site-safety"),
}
BOX_LABELS = {"missing_helmet": "no_helmet", "missing_hi_vis": "no_wear", "heavy_machinery": "machinery"}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, action="append", required=True, help="model directory (repeat)")
    parser.add_argument("--data", type=Path, default=PHOTO_DATA, help="photo set with manifest.csv")
    parser.add_argument("--batch", type=int, default=16, help="photos per graph run")
    parser.add_argument(
        "--url", help="a running service: post every photo to its /v1/photos/assess instead of running the model here"
    )
    parser.add_argument("--api-key", help="with --url: an intake key (ankang keys create --role intake)")
    return parser


def assess_over_http(url: str, api_key: str, paths: list[str]) -> list:
    """Every photo's answer from a running service's /v1/photos/assess, as objects with the fields
    the rows read (hazards, flagged types, triage, detections in photo pixels)."""
    from types import SimpleNamespace

    import httpx
    from tqdm.auto import tqdm

    answers = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60) as client:
        for path in tqdm(paths, desc="posting photos", unit="photo", mininterval=5):
            with open(path, "rb") as photo:
                response = client.post("/v1/photos/assess", files={"photo": (Path(path).name, photo, "image/jpeg")})
            response.raise_for_status()
            body = response.json()
            answers.append(
                SimpleNamespace(
                    version=body["model"]["version"],
                    hazards=body["hazards"],
                    flagged=[SimpleNamespace(type=entry["type"]) for entry in body["flagged"]],
                    triage=body["triage"],
                    detections=[SimpleNamespace(**entry) for entry in body["detections"]],
                )
            )
    return answers


def assess_all(model_dir: Path, paths: list[str], batch: int) -> list:
    """Every photo's PhotoAssessment as the API builds it."""
    from serving.images import decode_photo
    from serving.photo import PhotoModel

    model = PhotoModel(model_dir)
    assessments = []
    for start in range(0, len(paths), batch):
        images = [decode_photo(Path(path).read_bytes()) for path in paths[start : start + batch]]
        inputs = np.stack([model.card.preprocess(image) for image in images])
        for image, outputs in zip(images, model.run_batch(inputs)):
            assessments.append(model.assessment(outputs, width=image.width, height=image.height))
    return assessments


def _iou(box, others: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
    x1, y1 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(union - inter, 1e-9)


def box_rows(frame: pd.DataFrame, assessments: list, boxes: pd.DataFrame, hazard: str) -> dict:
    """Heads found and boxes right, per source and head height, over photos whose flag follows from boxes."""
    labelled = boxes[boxes["label"] == BOX_LABELS[hazard]].groupby("image")
    sources_with_boxes = set(frame.loc[frame["image"].isin(labelled.groups), "source"])
    rows = []
    for (_, photo), assessment in zip(frame.iterrows(), assessments):
        if photo["source"] not in sources_with_boxes or pd.isna(photo[hazard]):
            continue
        truth = (
            labelled.get_group(photo["image"])[["x_min", "y_min", "x_max", "y_max"]].to_numpy(float)
            if photo["image"] in labelled.groups
            else np.zeros((0, 4))
        )
        drawn = sorted((d for d in assessment.detections if d.type == hazard), key=lambda d: -d.score)
        taken = np.zeros(len(truth), bool)
        right = 0
        for detection in drawn:
            if len(truth):
                overlaps = np.where(taken, -1.0, _iou(np.array(detection.box, float), truth))
                best = int(np.argmax(overlaps))
                if overlaps[best] >= 0.5:
                    taken[best] = True
                    right += 1
        heights = truth[:, 3] - truth[:, 1]
        rows.append(
            {"source": photo["source"], "drawn": len(drawn), "right": right, "heights": heights, "found": taken}
        )
    result = {}
    for source in ["all", *sorted({row["source"] for row in rows})]:
        picked = [row for row in rows if source in ("all", row["source"])]
        heights = np.concatenate([row["heights"] for row in picked]) if picked else np.zeros(0)
        found = np.concatenate([row["found"] for row in picked]) if picked else np.zeros(0, bool)
        drawn = sum(row["drawn"] for row in picked)
        entry = {
            "photos": len(picked),
            "heads": int(len(heights)),
            "found": int(found.sum()),
            "recall": round(float(found.mean()), 4) if len(found) else None,
            "drawn": drawn,
            "precision": round(sum(row["right"] for row in picked) / drawn, 4) if drawn else None,
        }
        for name, low, high in HEIGHTS:
            rows_h = (heights >= low) & (heights < high)
            entry[f"recall_{name}"] = round(float(found[rows_h].mean()), 4) if rows_h.any() else None
            entry[f"heads_{name}"] = int(rows_h.sum())
        result[source] = entry
    return result


def audit_rows(audit: pd.DataFrame, assessments: dict) -> dict:
    flagged = {image: {f.type for f in assessments[image].flagged} for image in audit["image"]}
    triage = {image: assessments[image].triage for image in audit["image"]}
    fire = audit[audit["fire_smoke"] == 1]
    no_fire = audit[audit["fire_smoke"] == 0]
    result = {
        "fire_photos": len(fire),
        "fire_urgent": int(sum(triage[i] == "urgent" for i in fire["image"])),
        "fire_missed": [i for i in fire["image"] if triage[i] != "urgent"],
        "false_urgent": int(sum(triage[i] == "urgent" for i in no_fire["image"])),
        "no_fire_photos": len(no_fire),
    }
    result["fire_urgent_rate"] = round(result["fire_urgent"] / max(len(fire), 1), 4)
    for flag in ("heavy_machinery", "poor_housekeeping", "fire_smoke", "wet_floor", "missing_helmet", "missing_hi_vis"):
        negatives = audit[audit[flag] == 0]
        false = [i for i in negatives["image"] if flag in flagged[i]]
        result[f"false_{flag}"] = {
            "count": len(false),
            "n": len(negatives),
            "rate": round(len(false) / max(len(negatives), 1), 4),
        }
    by_eye = audit[audit["by_eye"].fillna("").str.contains("heavy_machinery") & (audit["heavy_machinery"] == 0)]
    false = [i for i in by_eye["image"] if "heavy_machinery" in flagged[i]]
    result["false_heavy_machinery_eye_labelled_construction"] = {
        "count": len(false),
        "n": len(by_eye),
        "rate": round(len(false) / max(len(by_eye), 1), 4),
        "photos": false,
    }
    return result


def auc_rows(frame: pd.DataFrame, assessments: list) -> dict:
    from sklearn.metrics import roc_auc_score

    result = {}
    for flag, sources in AUC_SOURCES.items():
        scores = np.array([a.hazards[flag] for a in assessments])
        for source in sources:
            rows = (frame["source"] == source).to_numpy() & frame[flag].notna().to_numpy()
            labels = frame[flag].to_numpy()[rows]
            if 0 < labels.sum() < len(labels):
                result[f"{flag} @ {source}"] = round(float(roc_auc_score(labels, scores[rows])), 4)
    return result


def main(args: argparse.Namespace) -> int:
    from training.photo.data import load_photos, machinery_from_boxes, read_audit, read_boxes

    boxes_px = pd.read_csv(args.data / "boxes.csv", dtype={"image": str})
    frame = load_photos([args.data])
    frame = frame[frame["split"] == "test"].reset_index(drop=True)
    frame = machinery_from_boxes(frame, read_boxes(args.data))
    audit = read_audit(args.data)
    for model_dir in args.model_dir:
        card = json.loads((model_dir / "card.json").read_text())

        def assess(paths: list[str], model_dir=model_dir) -> list:
            if args.url:
                return assess_over_http(args.url, args.api_key, paths)
            return assess_all(model_dir, paths, args.batch)

        assessments = assess(list(frame["path"]))
        if args.url and {answer.version for answer in assessments} != {card["version"]}:
            raise SystemExit(f"{args.url} serves {sorted({a.version for a in assessments})}, not {card['version']}")
        by_image = dict(zip(frame["image"], assessments))
        extra = audit[~audit["image"].isin(by_image)]
        by_image.update(zip(extra["image"], assess(list(extra["path"]))))
        result = {
            "model": str(model_dir),
            "through": f"{args.url}/v1/photos/assess" if args.url else "serving.photo.PhotoModel in-process",
            "version": card["version"],
            "input": card["input"]["height"],
            "box_thresholds": (card.get("detection") or {}).get("score_thresholds"),
            "thresholds": card["thresholds"],
            "boxes": {hazard: box_rows(frame, assessments, boxes_px, hazard) for hazard in BOX_LABELS},
            "audit": audit_rows(audit, by_image),
            "roc_auc_within_source": auc_rows(frame, assessments),
            "commit": git_commit(),
            "machine": machine(),
            "measured": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"photo_officer_table-{card['version']}{'-http' if args.url else ''}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        hh = result["boxes"]["missing_helmet"].get("hardhat-workers", {})
        audited = result["audit"]
        print(
            f"{card['version']} ({card['input']['height']} px): hardhat-workers bare heads found {hh.get('recall')} "
            f"({hh.get('found')}/{hh.get('heads')}), boxes right {hh.get('precision')}; fire urgent "
            f"{audited['fire_urgent_rate']}; false machinery {audited['false_heavy_machinery']['rate']}; "
            f"false housekeeping {audited['false_poor_housekeeping']['rate']}; AUC {result['roc_auc_within_source']}"
        )
        print(f"  wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
