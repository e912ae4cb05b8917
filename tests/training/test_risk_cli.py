"""`ankang train risk --data` / `score risk` / `evaluate risk` round trip on a tiny file (no MLflow: --no-track)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from ankang_cli import main
from runtime.modeldir import ModelDir
from training.risk.config import GeneratorConfig
from training.risk.generator import write_population

FAST = ["--n-estimators", "25", "--n-jobs", "1", "--no-track"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("risk_cli")
    data, _ = write_population(
        GeneratorConfig(rows=4_000, seed=31, variant="alt", missing_rate=0.02), folder / "alt.csv"
    )
    assert main(["train", "risk", "--data", str(data), "--out", str(folder / "model"), *FAST]) == 0
    return folder, data


def test_train_from_a_csv_writes_a_verified_model_with_oracle_metrics(trained):
    folder, data = trained
    card = ModelDir.load(folder / "model").card
    assert card["data"]["source"] == {"kind": "file", "path": data.name, "rows": 4_000, "oracle": True}  # not /tmp/...
    assert card["training_config"]["out"] == "model"
    assert card["data"]["train_rows"] == 3_200 and card["data"]["holdout_rows"] == 800
    assert card["metrics"]["qwk_vs_oracle"] > 0.85


def test_score_writes_enterprise_id_and_tier_for_every_row(trained, tmp_path):
    folder, data = trained
    profiles = pd.read_csv(data, dtype=str, keep_default_na=False).drop(columns=["tier"]).iloc[:300]
    profiles.to_parquet(tmp_path / "in.parquet", index=False)
    out = tmp_path / "tiers.csv"
    assert (
        main(
            [
                "score",
                "risk",
                "--model",
                str(folder / "model"),
                "--data",
                str(tmp_path / "in.parquet"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    tiers = pd.read_csv(out, keep_default_na=False)
    assert tiers["enterprise_id"].tolist() == profiles["enterprise_id"].tolist()
    assert tiers["tier"].between(1, 5).all() and (tiers["tier"] >= tiers["model_tier"]).all()


def test_score_stops_on_bad_rows_and_writes_nothing(trained, tmp_path, capsys):
    folder, _ = trained
    (tmp_path / "bad.csv").write_text("enterprise_id,headcount\nok,3\nbad,-3\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="1 problems; nothing was written"):
        main(
            [
                "score",
                "risk",
                "--model",
                str(folder / "model"),
                "--data",
                str(tmp_path / "bad.csv"),
                "--out",
                str(tmp_path / "out.csv"),
            ]
        )
    assert "headcount must be ≥ 1, got '-3'" in capsys.readouterr().out
    assert not (tmp_path / "out.csv").exists()


def test_evaluate_writes_report_with_plots_next_to_the_oracle(trained, tmp_path, capsys):
    folder, data = trained
    assert (
        main(["evaluate", "risk", "--model", str(folder / "model"), "--data", str(data), "--report", str(tmp_path)])
        == 0
    )
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert summary["rows"] == 4_000 and 0 < summary["qwk"] <= 1 and summary["oracle_qwk"] > 0.85
    for name in ("report.md", "report.html", "metrics.json", "confusion.png", "calibration.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "oracle (Bayes-optimal)" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_evaluate_report_shows_readable_tables_without_absolute_paths(trained, tmp_path):
    """The HTML report printed the data source as a raw Python dict with its /tmp/... path."""
    folder, data = trained
    assert (
        main(["evaluate", "risk", "--model", str(folder / "model"), "--data", str(data), "--report", str(tmp_path)])
        == 0
    )
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "{'" not in page and str(data.parent) not in page
    assert page.count("<table") == 3
    assert re.search(rf"<td>path</td>\s*<td>{re.escape(data.name)}</td>", page)
    assert re.search(
        r'<td>model \(before floors\)</td>(\s*<td class="number">[0-9.]+</td>){5}', page
    )  # QWK .. log-loss
    assert '<th class="number">log-loss</th>' in page


def test_train_rejects_a_file_without_tiers(tmp_path, capsys):
    (tmp_path / "no_tier.csv").write_text("enterprise_id,headcount\na,3\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:  # a user's mistake: one line and exit 2, no traceback
        main(["train", "risk", "--data", str(tmp_path / "no_tier.csv"), "--out", str(tmp_path / "m"), *FAST])
    assert exited.value.code == 2
    assert "has no `tier` column" in capsys.readouterr().err


def test_train_risk_defaults_to_the_measured_single_lightgbm_thread():
    """2 threads (the old default) fitted 13-15x slower than 1 on this shared machine
    (benchmarks/results/risk_threads.json)."""
    from ankang_cli import build_parser

    args = build_parser().parse_args(["train", "risk", "--no-track"])
    assert args.n_jobs == 1


def test_train_names_a_bad_tier_by_its_data_row_counting_from_1(tmp_path, capsys):
    (tmp_path / "bad_tier.csv").write_text("enterprise_id,tier\na,3\nb,9\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["train", "risk", "--data", str(tmp_path / "bad_tier.csv"), "--out", str(tmp_path / "m"), *FAST])
    assert exited.value.code == 2
    assert "data row 2 (from 1, below the header) has '9' (1 bad rows)" in capsys.readouterr().err
