"""The promotion rule: headline metrics may drop by at most `tolerance`, per-source ROC AUC by at most
`source_tolerance`; metrics one model cannot compute are shown but not judged."""

import pytest

from training.lifecycle.compare import PromotionPolicy, compare, rich_table, write_report
from training.lifecycle.kinds import Comparable

CHAMPION = Comparable(
    values={"roc_auc fire": 0.900, "roc_auc fire @ a": 0.80, "roc_auc wet": None, "qwk": 0.70},
    per_source=frozenset({"roc_auc fire @ a"}),
)


@pytest.mark.parametrize(
    ("challenger", "worse"),
    [
        ({"roc_auc fire": 0.895, "roc_auc fire @ a": 0.78, "qwk": 0.70}, set()),  # both exactly at their tolerance
        ({"roc_auc fire": 0.8949, "roc_auc fire @ a": 0.80, "qwk": 0.70}, {"roc_auc fire"}),
        (
            {"roc_auc fire": 0.95, "roc_auc fire @ a": 0.7799, "qwk": 0.70},
            {"roc_auc fire @ a"},
        ),  # a gain cannot hide it
        ({"roc_auc fire": 0.90, "roc_auc fire @ a": 0.80, "qwk": 0.60, "roc_auc wet": 0.1}, {"qwk"}),
    ],
)
def test_rule_marks_exactly_the_metrics_beyond_their_tolerance(challenger, worse):
    rows = compare(CHAMPION, Comparable(values=challenger), PromotionPolicy(tolerance=0.005, source_tolerance=0.02))
    assert {row.metric for row in rows if row.worse} == worse
    wet = next(row for row in rows if row.metric == "roc_auc wet")
    assert wet.verdict == "not judged" and wet.delta is None


def test_table_hides_rows_without_values_and_report_keeps_them(tmp_path):
    from rich.console import Console

    rows = compare(
        CHAMPION, Comparable(values={"roc_auc fire": 0.5, "roc_auc fire @ a": None, "qwk": 0.7}), PromotionPolicy()
    )
    console = Console(width=120, record=True)
    console.print(rich_table(rows, title="t"))
    text = console.export_text()
    assert "roc_auc fire " in text and "WORSE" in text and "roc_auc wet" not in text
    assert "1 rows where neither model has a value" in text
    files = write_report(tmp_path, rows, title="t", summary={"baseline": "champion (version 1)"})
    assert {f.name for f in files} == {"comparison.md", "comparison.html", "comparison.json", "deltas.png"}
    assert "| roc_auc wet | – | – | – |" in (tmp_path / "comparison.md").read_text()


def test_photo_promotion_also_judges_boxes_and_the_audit_triage():
    from training.lifecycle.kinds import officer_values

    metrics = {
        "boxes": {"test": {"missing_helmet": {"all": {"ap50_all": 0.68}}}, "val": {"missing_helmet": {"all": {}}}},
        "audit": {
            "urgent_recall": {"rate": 0.95},
            "false_urgent": {"rate": 0.01},
            "false_review_or_urgent_of_clear": {"rate": None},
        },
    }
    assert officer_values(metrics, split="test") == {
        "box AP50 missing_helmet": 0.68,
        "audit urgent recall": 0.95,
        "audit not falsely urgent": 0.99,
        "audit clear photos left clear": None,
    }
    assert officer_values({"test": {}}, split="test") == {}
