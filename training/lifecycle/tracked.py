"""MLflow tracking around every `ankang train` command, without touching the trainers.

`track_train_commands` (called by `ankang_cli.build_parser`) replaces the `func` of each
`train` noun with `run_tracked`: it opens an MLflow run, logs the options as params, hands the
trainer an `on_epoch_end` callback through `args`, then logs the card's metrics (per flag and
per source, or QWK and per-tier recall), the data fingerprint, the summary report and the ONNX
model, registers a new version and points the `challenger` alias at it.

Every `ankang train` run, tracked or not, writes its model to var/candidates/<name>/<version>/
unless `--out` names another folder: models/<name>/ is written by `ankang promote` only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import tempfile
from pathlib import Path

from runtime.paths import CANDIDATES_DIR, MODELS_DIR
from training.lifecycle.kinds import KINDS, ModelKind

NOT_PARAMS = {"func", "on_epoch_end", "verb", "noun", "track", "experiment"}
EPILOG = """\
Tracking (on by default): the run is logged to MLflow ($MLFLOW_TRACKING_URI, default
sqlite:///mlflow.db with artifacts in mlartifacts/): options, per-epoch metrics, data fingerprint,
held-out metrics, summary report, the ONNX model. A new version of `{name}` is registered and
the alias `challenger` points at it. --no-track runs the bare trainer. Either way the model goes
to var/candidates/{dir}/<version>/ unless --out says otherwise; release it with `ankang promote {noun}`."""


def track_train_commands(verbs) -> None:
    train = verbs("train")
    wrapped: set[int] = set()
    for noun, parser in train.choices.items():
        kind = KINDS.get(noun.split("-")[0])  # photo, photo-resolution-study -> photo
        if kind is None or id(parser) in wrapped:
            continue
        wrapped.add(id(parser))
        group = parser.add_argument_group("experiment tracking")
        group.add_argument(
            "--track",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="log to MLflow and register a challenger version (default: on)",
        )
        group.add_argument("--experiment", default="ankang", help="MLflow experiment name (default: ankang)")
        parser.epilog = EPILOG.format(name=kind.registered_name, dir=kind.dir_name, noun=kind.noun)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.set_defaults(
            func=functools.partial(
                run_tracked, original=parser.get_default("func"), kind=kind, default_out=parser.get_default("out")
            )
        )


def _redirect_out(args: argparse.Namespace, kind: ModelKind, *, default_out: Path | None) -> bool:
    """Point the default (or the released) output at a staging folder under var/candidates/<name>/;
    True if it did, so `_settle_out` names the folder by the trained model's version."""
    out = getattr(args, "out", None)
    if out is not None and out != default_out and Path(out).resolve() != (MODELS_DIR / kind.dir_name).resolve():
        return False
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    args.out = CANDIDATES_DIR / kind.dir_name / f".training-{stamp}"
    print(
        f"writing the candidate model under {CANDIDATES_DIR / kind.dir_name}/ (models/{kind.dir_name}/ "
        f"changes only through `ankang promote {kind.noun}`)"
    )
    return True


def _settle_out(args: argparse.Namespace) -> None:
    """Rename the staging folder to the version its card.json names (`<version>-<n>` if that is taken)."""
    staged = Path(args.out)
    version = json.loads((staged / "card.json").read_text(encoding="utf-8"))["version"]
    target, n = staged.with_name(version), 1
    while target.exists():
        n += 1
        target = staged.with_name(f"{version}-{n}")
    args.out = staged.rename(target)
    print(f"candidate model: {args.out}")


def _options(args: argparse.Namespace) -> dict:
    options = {}
    for key, value in vars(args).items():
        if key in NOT_PARAMS or callable(value):
            continue
        options[key] = (
            [str(v) for v in value] if isinstance(value, list) else (str(value) if isinstance(value, Path) else value)
        )
    return options


def run_tracked(args: argparse.Namespace, *, original, kind: ModelKind, default_out: Path | None = None) -> int:
    staged = _redirect_out(args, kind, default_out=default_out)
    if not args.track:
        code = original(args)
        if staged and not code:
            _settle_out(args)
        return int(code or 0)
    import mlflow

    from training import tracking

    experiment = tracking.configure(experiment=args.experiment)
    with mlflow.start_run(experiment_id=experiment, run_name=f"train-{kind.noun}") as run:
        mlflow.set_tags({"ankang.command": f"train {kind.noun}", "ankang.model": kind.registered_name})
        mlflow.log_params(tracking.params_of(_options(args)))
        args.on_epoch_end = tracking.EpochLogger()
        code = original(args)
        if code:
            mlflow.set_tag("ankang.exit_code", str(code))
            return int(code)
        if staged:
            _settle_out(args)
        registered = log_trained_model(kind, Path(args.out), epoch_logger=args.on_epoch_end)
    print(
        f"MLflow run {run.info.run_id}: registered {registered.name} version {registered.version} "
        f"as `challenger` ({tracking.tracking_uri()})"
    )
    print(f"next: ankang promote {kind.noun}   (compares it with the champion on the same held-out data)")
    return 0


def log_trained_model(kind: ModelKind, model_dir: Path, *, epoch_logger=None):
    """Inside an active run: log the trained model_dir's metrics, fingerprint, report and ONNX
    model; register it as the new challenger. Returns registry.Registered."""
    import mlflow

    from training import tracking
    from training.lifecycle.registry import register_model_dir
    from training.lifecycle.summary import write_summary

    card = kind.card(model_dir)
    fingerprint = kind.data_fingerprint(card)
    mlflow.set_tag("data_fingerprint", kind.fingerprint_text(card))
    tracking.log_json(fingerprint, "data_fingerprint.json")
    mlflow.log_metrics(tracking.numeric_metrics(card.get("metrics", {})))
    history = card["training_config"].get("history", [])
    if history and (epoch_logger is None or epoch_logger.calls == 0):  # the trainer did not call back live
        for entry in history:
            mlflow.log_metrics(
                tracking.numeric_metrics({k: v for k, v in entry.items() if k != "epoch"}, prefix="epoch."),
                step=int(entry["epoch"]),
            )
    with tempfile.TemporaryDirectory(prefix="ankang-report-") as scratch:
        mlflow.log_artifacts(str(write_summary(kind, card, Path(scratch))), artifact_path="report")
    tracking.log_json(json.loads(json.dumps(card["training_config"], default=str)), "training_config.json")
    return register_model_dir(kind, model_dir)
