"""`ankang promote`, `ankang models list`, `ankang drift` (and MLflow tracking around `ankang train`).

MLflow, torch and lightgbm are imported inside the run functions so `ankang --help` stays fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from runtime.paths import MODELS_DIR, PROJECT_ROOT
from training.lifecycle.compare import PromotionPolicy
from training.lifecycle.kinds import KINDS, ModelKind, PhotoHeldOut, RiskHeldOut
from training.lifecycle.tracked import track_train_commands  # noqa: F401  (ankang_cli calls it)

REPORTS_DIR = PROJECT_ROOT / "reports"
PROMOTE_DESCRIPTION = """\
Compare the `challenger` version of {name} (or --version N) with the `champion` on the same
held-out data ({heldout}) and release it only if no metric is worse: headline metrics
({headline}) by more than --tolerance, per-source ROC AUC by more than --source-tolerance.
Both registered model.onnx files must match their cards' sha256 (ONNX parity). Then the alias
`champion` moves to it and models/{dir}/ (model.onnx + card.json) is written atomically: the
running service's watcher picks it up without dropping requests.
With no champion yet, the baseline is the model released in models/{dir}/ (scored on the same
data); with neither, the challenger is promoted without comparison.
A refused promotion prints the comparison table and exits with status 1; --force releases
anyway and records what it overrode (version tag `promotion.forced`)."""


def register(verb) -> None:
    for kind in KINDS.values():
        _promote_parser(verb("promote"), kind)
    models = verb("models").add_parser(
        "list",
        help="registered versions, aliases and what is released",
        description="Every registered version of hazard-photo and labor-risk with "
        "its aliases (champion, challenger), headline metric, data fingerprint and "
        "promotion tags, and which version models/<name>/ holds.",
    )
    models.add_argument("--models-dir", type=Path, default=MODELS_DIR, help=f"released models (default: {MODELS_DIR})")
    models.set_defaults(func=run_models_list)
    from training.lifecycle.drift_commands import register_drift

    register_drift(verb)


def _promote_parser(sub, kind: ModelKind) -> None:
    photo = kind.noun == "photo"
    description = PROMOTE_DESCRIPTION.format(
        name=kind.registered_name,
        dir=kind.dir_name,
        heldout="the test split of --data" if photo else "--data, or a generated population (--rows, --seed)",
        headline="ROC AUC per flag" if photo else "QWK and recall per tier",
    )
    parser = sub.add_parser(
        kind.noun,
        aliases=[kind.registered_name],
        help=f"release the {kind.registered_name} challenger if it is not worse than the champion",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    policy = PromotionPolicy()
    parser.add_argument("--version", help="registered version to promote (default: the `challenger` alias)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=policy.tolerance,
        help=f"largest allowed drop of a headline metric (default: {policy.tolerance})",
    )
    parser.add_argument(
        "--source-tolerance",
        type=float,
        default=policy.source_tolerance,
        help=f"largest allowed drop of a per-source ROC AUC (default: {policy.source_tolerance})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="release even if metrics are worse (overrides the tolerance check, not parity); logged",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="compare and write the report only: no alias "
        "moves, nothing released, no tags; exit 1 if the challenger would be refused",
    )
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR, help=f"released models (default: {MODELS_DIR})")
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help=f"comparison report folder (default: {REPORTS_DIR}/promote-{kind.dir_name}-<time>)",
    )
    _heldout_arguments(parser, photo=photo)
    parser.set_defaults(func=run_promote, kind_noun=kind.noun)


def _heldout_arguments(parser: argparse.ArgumentParser, *, photo: bool) -> None:
    group = parser.add_argument_group("held-out data (the same for both models)")
    if photo:
        from training.photo.config import DEFAULT_CACHE, DEFAULT_DATA

        group.add_argument(
            "--data",
            type=Path,
            action="append",
            default=None,
            metavar="DIR",
            help=f"dataset folder(s) with manifest.csv, repeatable (default: {DEFAULT_DATA})",
        )
        group.add_argument("--split", choices=("val", "test"), default="test", help="split to score (default: test)")
        group.add_argument(
            "--limit", type=int, default=0, help="every-k-th subset of N photos before splitting; 0 = all (default)"
        )
        group.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="decoded-photo cache folder")
        group.add_argument("--workers", type=int, default=2, help="processes decoding photos (default: 2)")
    else:
        group.add_argument(
            "--data",
            type=Path,
            default=None,
            help="labelled CSV/Parquet held out from training (default: a generated population)",
        )
        from training.risk.config import RISK_HOLDOUT

        group.add_argument(
            "--rows", type=int, default=RISK_HOLDOUT.rows, help=f"generated enterprises (default: {RISK_HOLDOUT.rows})"
        )
        group.add_argument(
            "--seed", type=int, default=RISK_HOLDOUT.seed, help=f"generator seed (default: {RISK_HOLDOUT.seed})"
        )


def heldout_of(args: argparse.Namespace) -> PhotoHeldOut | RiskHeldOut:
    if args.kind_noun == "photo":
        from training.photo.config import DEFAULT_DATA

        return PhotoHeldOut(
            data=tuple(args.data or [DEFAULT_DATA]),
            split=args.split,
            limit=args.limit,
            cache_dir=args.cache_dir,
            workers=args.workers,
        )
    return RiskHeldOut(data=args.data, rows=args.rows, seed=args.seed)


def run_promote(args: argparse.Namespace) -> int:
    from rich.console import Console

    from training.lifecycle.promote import promote

    kind, console = KINDS[args.kind_noun], Console()
    console.width = max(console.width, 120)  # metric names stay on one line in pipes and CI logs
    report = args.report or REPORTS_DIR / f"promote-{kind.dir_name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    policy = PromotionPolicy(tolerance=args.tolerance, source_tolerance=args.source_tolerance)
    try:
        outcome = promote(
            kind,
            version=args.version,
            force=args.force,
            heldout=heldout_of(args),
            policy=policy,
            models_dir=args.models_dir,
            report_dir=report,
            console=console,
            dry_run=args.dry_run,
        )
    except (LookupError, ValueError, RuntimeError) as error:
        console.print(f"[bold red]not promoted[/]: {error}", soft_wrap=True)
        return 2
    if args.dry_run:
        verdict = "would be REFUSED" if outcome.worse else "would be promoted"
        console.print(
            f"dry run: {kind.registered_name} version {outcome.version} {verdict} "
            f"(baseline: {outcome.baseline}); nothing changed",
            soft_wrap=True,
        )
        return 1 if outcome.worse else 0
    if not outcome.promoted:
        console.print(
            f"[bold red]REFUSED[/]: {kind.registered_name} version {outcome.version} is worse than "
            f"{outcome.baseline} on {len(outcome.worse)} metric(s) (table above; report {report}). "
            "Nothing was released. Use --force to release anyway (it is recorded).",
            soft_wrap=True,
        )
        return 1
    report_note = f"; report {report}" if outcome.rows else ""
    console.print(
        f"[bold green]PROMOTED[/]: {kind.registered_name} version {outcome.version} is the champion "
        f"(baseline: {outcome.baseline}); released to {outcome.released.path} "
        f"(card version {outcome.released.version}){report_note}",
        soft_wrap=True,
    )
    return 0


def run_models_list(args: argparse.Namespace) -> int:
    from rich.console import Console

    from training.lifecycle.listing import models_table

    console = Console()
    console.width = max(console.width, 130)  # the table is wide; pipes and CI logs default to 80 columns
    console.print(models_table(models_dir=args.models_dir))
    return 0
