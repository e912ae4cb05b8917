"""The one report writer of training: Markdown and HTML from one model (Jinja2 templates), PNG plots (matplotlib).

Every report (`ankang evaluate photo|risk`, the run summary, `ankang promote`'s comparison, `ankang
drift`) is a `Report`: a title, a few facts, tables, notes and plots. `write_report` renders
`<stem>.md` and `<stem>.html` from `training/templates/`; cells are formatted once (`cell`), so
no report prints a raw Python dict or an absolute path of this checkout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from runtime.paths import PROJECT_ROOT

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    heading: str = ""
    flagged: Sequence[bool] = ()  # rows to show in red (a failed check, a major drift)
    numeric: Sequence[str] = ()  # columns aligned right


@dataclass(frozen=True)
class Report:
    title: str
    facts: Mapping[str, Any] = field(default_factory=dict)  # "- key: value" lines under the title
    paragraphs: Sequence[str] = ()
    tables: Sequence[Table] = ()
    notes: Sequence[str] = ()
    plots: Sequence[tuple[str, str]] = ()  # (caption, file name beside the report)


def cell(value: Any, *, digits: int = 4) -> str:
    """One readable cell: – for nothing, rounded floats, key: value pairs, paths relative to the checkout."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, Path) or (isinstance(value, str) and value.startswith(str(PROJECT_ROOT))):
        return _relative(Path(value))
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {cell(item, digits=digits)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(item, digits=digits) for item in value)
    return str(value)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(["html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["cell"] = cell
    return environment


def render(report: Report, *, format: str) -> str:
    """The report as Markdown (`format="md"`) or HTML (`format="html"`)."""
    return _environment().get_template(f"report.{format}.j2").render(report=report)


def write_report(report_dir: Path, report: Report, *, stem: str = "report") -> list[Path]:
    """Write `<stem>.md` and `<stem>.html` into report_dir; return their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for format in ("md", "html"):
        path = report_dir / f"{stem}.{format}"
        path.write_text(render(report, format=format), encoding="utf-8")
        written.append(path)
    return written


def pyplot():
    """matplotlib.pyplot drawing to files only (the Agg backend: no display on servers and in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(*grid: int, **kwargs):
    """A new (figure, axes) from `plt.subplots(*grid, **kwargs)` on the file-only backend."""
    return pyplot().subplots(*grid, **kwargs)


def save_plot(plot_figure, path: Path, *, dpi: int = 110) -> str:
    """Write the figure as a PNG beside the report, close it, and return its file name for the report's links."""
    plot_figure.tight_layout()
    plot_figure.savefig(path, dpi=dpi)
    pyplot().close(plot_figure)
    return path.name
