"""The one report writer: the same Report as Markdown and HTML, readable cells, escaped HTML."""

from __future__ import annotations

from training.reporting import PROJECT_ROOT, Report, Table, cell, write_report


def test_cells_are_readable():
    assert [cell(None), cell(float("nan")), cell(0.123456), cell(3), cell(True)] == ["–", "–", "0.1235", "3", "yes"]
    assert cell({"kind": "generated", "rows": 100}) == "kind: generated, rows: 100"
    assert cell(PROJECT_ROOT / "models" / "labor_risk") == "models/labor_risk"
    assert cell(str(PROJECT_ROOT / "var" / "x.csv")) == "var/x.csv" and cell("/elsewhere/x.csv") == "/elsewhere/x.csv"


def test_one_report_renders_as_markdown_and_html(tmp_path):
    report = Report(
        title="model <b>",
        facts={"data": {"rows": 5}},
        paragraphs=["intro"],
        tables=[
            Table(
                columns=["metric", "value"],
                rows=[["qwk", 0.87654], ["recall", None]],
                heading="held out",
                flagged=[False, True],
                numeric=["value"],
            )
        ],
        notes=["a note"],
        plots=[("curve", "curve.png")],
    )
    markdown, page = (path.read_text() for path in write_report(tmp_path, report, stem="summary"))
    assert markdown.splitlines()[:3] == ["# model <b>", "", "- data: rows: 5"]
    assert "| metric | value |\n|---|--:|\n| qwk | 0.8765 |\n| recall | – |" in markdown
    assert "![curve](curve.png)" in markdown and "## held out" in markdown
    assert "<h1>model &lt;b&gt;</h1>" in page and '<tr class="flagged"><td>recall</td>' in page
    assert '<img src="curve.png" alt="curve">' in page and "<li>data: rows: 5</li>" in page
