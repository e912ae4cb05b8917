"""Box AP50 per detection class with pycocotools, overall and by box height in photo pixels."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from training.photo.data import DETECTION_CLASSES

# (name, min height, max height) in pixels of the stored photo
HEIGHT_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("all", 0.0, 1e5),
    ("under_24px", 0.0, 24.0),
    ("24_to_64px", 24.0, 64.0),
    ("over_64px", 64.0, 1e5),
)


def box_ap50(
    ground_truth: list[tuple[np.ndarray, np.ndarray]], detections: np.ndarray, photo_sizes: np.ndarray, *, cls: int
) -> dict:
    """AP at IoU 0.5 of class `cls` over photos, per height bucket (COCO's area ranges are fed
    squared heights, so its small/medium/large machinery buckets by height instead of area).

    ground_truth: per photo (boxes xyxy normalised to the photo, classes); detections: N×D×6 rows
    of the exported graph; photo_sizes: N×2 (width, height) of the stored photos."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for index, ((boxes, classes), rows, (width, height)) in enumerate(zip(ground_truth, detections, photo_sizes)):
        images.append({"id": index, "width": int(width), "height": int(height)})
        scale = np.array([width, height, width, height], np.float64)
        for box in boxes[classes == cls].astype(np.float64) * scale:
            annotations.append(_coco_box(box, id=len(annotations) + 1, image_id=index, iscrowd=0))
        for row in rows[(rows[:, 4] > 0) & (rows[:, 5] == cls)]:
            results.append({**_coco_box(row[:4].astype(np.float64) * scale, image_id=index), "score": float(row[4])})
    counts = {name: sum(low <= a["bbox"][3] < high for a in annotations) for name, low, high in HEIGHT_BUCKETS}
    if not annotations:
        return {
            "class": DETECTION_CLASSES[cls],
            "photos": len(images),
            **{f"ap50_{name}": None for name, *_ in HEIGHT_BUCKETS},
            **{f"boxes_{k}": v for k, v in counts.items()},
        }
    truth = COCO()
    truth.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "box"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
        found = truth.loadRes(results) if results else COCO()
        evaluator = COCOeval(truth, found, iouType="bbox")
        evaluator.params.iouThrs = np.array([0.5])
        evaluator.params.maxDets = [100]
        evaluator.params.areaRng = [[low**2, high**2] for _, low, high in HEIGHT_BUCKETS]
        evaluator.params.areaRngLbl = [name for name, *_ in HEIGHT_BUCKETS]
        for annotation in truth.dataset["annotations"]:
            annotation["area"] = annotation["bbox"][3] ** 2
        for annotation in found.dataset.get("annotations", []):
            annotation["area"] = annotation["bbox"][3] ** 2
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][0, :, 0, :, 0]  # recall points × height buckets
    aps = {}
    for bucket, (name, *_) in enumerate(HEIGHT_BUCKETS):
        values = precision[:, bucket]
        aps[f"ap50_{name}"] = round(float(values[values > -1].mean()), 5) if (values > -1).any() else None
    return {
        "class": DETECTION_CLASSES[cls],
        "photos": len(images),
        **aps,
        **{f"boxes_{k}": v for k, v in counts.items()},
    }


def _coco_box(xyxy: np.ndarray, **fields) -> dict:
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    width, height = max(x1 - x0, 0.0), max(y1 - y0, 0.0)
    return {**fields, "category_id": 1, "bbox": [x0, y0, width, height], "area": height**2}
