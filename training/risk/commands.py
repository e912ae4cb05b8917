"""`ankang train|evaluate|score risk`: the labor-relation risk model's commands.

Heavy libraries (lightgbm, sklearn, onnx) load inside the run functions so `ankang --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.paths import MODELS_DIR
from training.risk.config import (
    RISK_HOLDOUT,
    GeneratorConfig,
    RiskModelConfig,
    add_dataclass_arguments,
    config_from_args,
)

DEFAULT_MODEL = MODELS_DIR / "labor_risk"


def register(verb) -> None:
    _train_parser(verb("train"))
    _evaluate_parser(verb("evaluate"))
    _strategies_parser(verb("evaluate"))
    _score_parser(verb("score"))


def _add_generator_arguments(parser: argparse.ArgumentParser, *, rows: int, seed: int) -> None:
    group = parser.add_argument_group("generated population (used when --data is not given)")
    group.add_argument("--rows", type=int, default=rows, help=f"enterprises to generate (default: {rows})")
    group.add_argument("--gen-seed", type=int, default=seed, help=f"generator seed (default: {seed})")
    group.add_argument(
        "--variant",
        choices=("city", "alt"),
        default="city",
        help="city: default population; alt: a differently built one (default: city)",
    )
    group.add_argument("--missing-rate", type=float, default=0.0, help="share of feature cells left blank (default: 0)")


def _generator(args: argparse.Namespace) -> GeneratorConfig:
    return GeneratorConfig(rows=args.rows, seed=args.gen_seed, variant=args.variant, missing_rate=args.missing_rate)


def _train_parser(sub) -> None:
    parser = sub.add_parser(
        "risk",
        help="train the labor-relation risk model (LightGBM, cumulative ordinal) and export it to ONNX",
        description="Train on your own CSV/Parquet (--data: the schema's columns of datasets/labor_risk/schema.yaml "
        "plus an integer `tier` 1-5) or on a generated population, hold out 20 % for metrics, export "
        "model.onnx + card.json to --out (default: a new var/candidates/labor_risk/<version>/) "
        "after an ONNX parity check.",
    )
    parser.add_argument("--data", type=Path, help="labelled CSV or Parquet file (default: generate a population)")
    add_dataclass_arguments(parser, RiskModelConfig)
    _add_generator_arguments(parser, rows=100_000, seed=GeneratorConfig().seed)
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from training.risk.train import train_risk

    console = Console(stderr=True)
    config = config_from_args(RiskModelConfig, args)
    with console.status("fitting the cumulative LightGBM models, exporting to ONNX, checking parity ..."):
        result = train_risk(config, data=args.data, generator=None if args.data else _generator(args))
    metrics = result.metrics
    oracle = (
        f", oracle QWK {metrics['oracle']['qwk']:.4f} (ratio {metrics['qwk_vs_oracle']:.4f})"
        if "oracle" in metrics
        else ""
    )
    console.print(
        f"wrote {result.model_dir}/model.onnx + card.json in {result.seconds:.1f} s (fit {result.fit_seconds:.1f} s); "
        f"holdout QWK {metrics['qwk']:.4f}{oracle}, macro-F1 {metrics['macro_f1']:.4f}"
    )
    return 0


def _evaluate_parser(sub) -> None:
    parser = sub.add_parser(
        "risk",
        help="evaluate a risk model on held-out data; report with confusion and calibration plots",
        description="Score --data (labelled CSV/Parquet; a `<stem>.oracle.parquet` sidecar adds the oracle) or a "
        "freshly generated population through the exported ONNX model; writes report.md, report.html, "
        "metrics.json, confusion.png and calibration.png to --report.",
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"model directory (default: {DEFAULT_MODEL})")
    parser.add_argument("--data", type=Path, help="labelled CSV or Parquet file (default: generate a population)")
    parser.add_argument(
        "--report", type=Path, default=Path("reports/labor_risk"), help="report directory (default: reports/labor_risk)"
    )
    _add_generator_arguments(parser, rows=RISK_HOLDOUT.rows, seed=RISK_HOLDOUT.seed)
    parser.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from training.risk.evaluate import evaluate_risk

    result = evaluate_risk(
        model_dir=args.model, report_dir=args.report, data=args.data, generator=None if args.data else _generator(args)
    )
    summary = {key: result[key] for key in ("rows", "qwk_vs_oracle") if key in result}
    summary |= {"qwk": result["model_tier"]["qwk"], "macro_f1": result["model_tier"]["macro_f1"]}
    if "oracle" in result:
        summary["oracle_qwk"] = result["oracle"]["qwk"]
    print(json.dumps(summary))
    print(f"report: {args.report / 'report.html'}")
    return 0


def _strategies_parser(sub) -> None:
    parser = sub.add_parser(
        "risk-strategies",
        help="compare ordinal strategies (cumulative, multiclass, regression) on one split",
        description="Fit each ordinal strategy on the same generated population and report QWK, macro-F1, Brier, "
        "per-tier recall and fit time next to the Bayes-optimal oracle.",
    )
    parser.add_argument("--report", type=Path, default=Path("reports/labor_risk"), help="output directory")
    add_dataclass_arguments(parser, RiskModelConfig, skip=("strategy", "monotone", "out", "version"))
    _add_generator_arguments(parser, rows=100_000, seed=GeneratorConfig().seed)
    parser.set_defaults(func=run_strategies)


def run_strategies(args: argparse.Namespace) -> int:
    from training.risk.evaluate import compare_strategies, strategies_markdown

    rows = compare_strategies(
        generator=_generator(args), config=config_from_args(RiskModelConfig, args), report_dir=args.report
    )
    print(strategies_markdown(rows))
    return 0


def _score_parser(sub) -> None:
    parser = sub.add_parser(
        "risk",
        help="score a CSV/Parquet file of enterprise profiles with an exported risk model",
        description="Writes one row per enterprise: enterprise_id, tier (after policy floors), model_tier, "
        "p_tier_1..5, rules_fired, reasons, imputed. Bad rows stop the run with every problem listed.",
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"model directory (default: {DEFAULT_MODEL})")
    parser.add_argument("--data", type=Path, required=True, help="CSV or Parquet with the schema's columns")
    parser.add_argument("--out", type=Path, required=True, help="output file (.csv or .parquet)")
    parser.add_argument("--chunk-rows", type=int, default=100_000, help="rows per batch (default: 100000)")
    parser.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    import pandas as pd
    from tqdm import tqdm

    from runtime.errors import InputError
    from runtime.risk.scoring import RiskModel
    from runtime.risk.validate import validate_frame
    from runtime.safe_csv import frame_to_csv
    from training.risk.data import read_frame

    scorer = RiskModel.load(args.model)
    frame = read_frame(args.data)
    try:
        validate_frame(scorer.schema, frame, text_cells=True)  # whole file first: row numbers are the file's
    except InputError as error:
        for entry in (error.context.get("errors") or [{"message": f"{error.field}: {error.message}"}])[:20]:
            print(entry["message"])
        raise SystemExit(f"{args.data}: {error.context.get('error_count', 1)} problems; nothing was written") from error
    tables = []
    for start in tqdm(range(0, len(frame), args.chunk_rows), desc="scoring", unit="chunk"):
        chunk = frame.iloc[start : start + args.chunk_rows].reset_index(drop=True)
        tables.append(scorer.results_table(scorer.score_frame(chunk, text_cells=True)))
    table = pd.concat(tables, ignore_index=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(args.out, index=False) if args.out.suffix.lower() == ".parquet" else frame_to_csv(table, args.out)
    print(f"wrote {len(table)} enterprises to {args.out}")
    return 0
