"""The photos as an officer meets them (`audit_labels.csv`): false alarms per flag and the triage.

The flag and triage rules are serving's (`serving/photo.py` `build_assessment`): a type is flagged when
its probability reaches its threshold or a box of it is drawn (at its class's score threshold);
`urgent` if a flagged type is suspected major (疑似重大 in datasets/hazard_types.yaml), `review` if
anything else is flagged, `clear` otherwise (tests/contract/test_flag_rule.py holds the two equal).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from training.photo.data import FLAGS

TRIAGE_LEVELS = ("clear", "review", "urgent")


def suspected_major(labels: tuple[str, ...] = FLAGS) -> np.ndarray:
    """Boolean per label: its taxonomy severity is 疑似重大."""
    from runtime.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    return np.array([taxonomy[label].is_suspected_major for label in labels])


def triage_of(flagged: np.ndarray, major: np.ndarray) -> np.ndarray:
    """N×K booleans (flagged, or truly present) -> N triage levels."""
    urgent = (flagged & major).any(axis=1)
    review = flagged.any(axis=1)
    return np.where(urgent, "urgent", np.where(review, "review", "clear"))


def _rate(numerator: int, denominator: int) -> dict:
    return {
        "count": int(numerator),
        "n": int(denominator),
        "rate": round(numerator / denominator, 5) if denominator else None,
    }


def drawn_boxes(
    detections: np.ndarray,
    box_thresholds: dict[str, float],
    *,
    classes: tuple[str, ...],
    labels: tuple[str, ...] = FLAGS,
) -> np.ndarray:
    """N×K booleans: the answer draws a box of label k, i.e. a detection row of its class (the n-th of
    the card's detection `classes`) that serving draws (runtime/cards.py `DetectionHead.drawn`); a class
    without a box threshold draws none."""
    from runtime.cards import DetectionHead

    head = DetectionHead(
        classes=tuple(classes),
        score_thresholds={name: box_thresholds.get(name, math.inf) for name in classes},
        max_detections=detections.shape[1],
    )
    kept = head.drawn(detections)
    drawn = np.zeros((len(detections), len(labels)), dtype=bool)
    for cls, hazard in enumerate(classes):
        drawn[:, labels.index(hazard)] = (kept & (detections[:, :, 5] == cls)).any(axis=1)
    return drawn


def flag_alarm_metrics(
    truth: np.ndarray, scores: np.ndarray, threshold: float, *, boxed: np.ndarray | None = None
) -> dict:
    """Precision, recall and false-positive rate at `threshold` (or with a box drawn: `boxed`) over the
    known cells of one flag."""
    known = ~np.isnan(truth)
    flagged_all = scores >= threshold if boxed is None else (scores >= threshold) | boxed
    present, flagged = truth[known] == 1, flagged_all[known]
    tp, fp = int((present & flagged).sum()), int((~present & flagged).sum())
    fn, tn = int((present & ~flagged).sum()), int((~present & ~flagged).sum())
    return {
        "threshold": threshold,
        "precision": round(tp / (tp + fp), 5) if tp + fp else None,
        "recall": round(tp / (tp + fn), 5) if tp + fn else None,
        "false_positive_rate": round(fp / (fp + tn), 5) if fp + tn else None,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "n": int(known.sum()),
    }


def audit_metrics(
    frame: pd.DataFrame, probabilities: np.ndarray, thresholds: dict, *, boxed: np.ndarray | None = None
) -> dict:
    """Per flag alarms, the triage confusion matrix (truth -> predicted), false-urgent rate (of all
    photos whose truth triage is known) and recall of truly urgent photos. A photo's truth triage is
    unknown when a blank cell could change it (a blank suspected-major flag, or no known hazard
    and some blank). `boxed` (N×K, `drawn_boxes`): the types the answer draws a box of, flagged too."""
    truth = frame[list(FLAGS)].to_numpy(dtype="float32")
    boxed = np.zeros(probabilities.shape, dtype=bool) if boxed is None else boxed
    flags = {
        flag: flag_alarm_metrics(truth[:, k], probabilities[:, k], thresholds[flag], boxed=boxed[:, k])
        for k, flag in enumerate(FLAGS)
    }
    major = suspected_major()
    flagged = (probabilities >= np.array([thresholds[flag] for flag in FLAGS])) | boxed
    true_triage = triage_of(truth == 1, major)
    blank = np.isnan(truth)
    unknown = (blank & major).any(axis=1) & (true_triage != "urgent")
    unknown |= (true_triage == "clear") & blank.any(axis=1)
    predicted = triage_of(flagged, major)[~unknown]
    actual = true_triage[~unknown]
    confusion = {
        truth_level: {level: int(((actual == truth_level) & (predicted == level)).sum()) for level in TRIAGE_LEVELS}
        for truth_level in TRIAGE_LEVELS
    }
    truly_urgent = actual == "urgent"
    return {
        "photos": int(len(frame)),
        "triage_known": int((~unknown).sum()),
        "flags": flags,
        "triage_confusion": confusion,
        "false_urgent": _rate(int(((predicted == "urgent") & ~truly_urgent).sum()), len(actual)),
        "urgent_recall": _rate(int(((predicted == "urgent") & truly_urgent).sum()), int(truly_urgent.sum())),
        "false_review_or_urgent_of_clear": _rate(
            int(((predicted != "clear") & (actual == "clear")).sum()), int((actual == "clear").sum())
        ),
    }
