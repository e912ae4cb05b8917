"""`ankang promote`: challenger versus champion on the same held-out data, then release.

Baseline: the `champion` alias; with no champion yet, the model released in models/<name>/
(scored on the same held-out data, not its card's numbers); with neither, the challenger is
promoted without a comparison. Parity (registered model.onnx sha256 == card sha256) is
checked for both before scoring. `force` releases a challenger the rule refused, and records
what it overrode as the version tag `promotion.forced`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import ModelIntegrityError
from runtime.modeldir import ModelDir
from training.lifecycle import registry
from training.lifecycle.compare import PromotionPolicy, Row, compare, rich_table, write_report
from training.lifecycle.kinds import ModelKind, PhotoHeldOut, RiskHeldOut
from training.lifecycle.release import release
from training.reporting import cell

MAX_TAG_CHARS = 4900


@dataclass
class PromotionOutcome:
    promoted: bool
    version: str
    baseline: str
    rows: list[Row] = field(default_factory=list)
    overridden: list[str] = field(default_factory=list)
    released: ModelDir | None = None
    report_dir: Path | None = None

    @property
    def worse(self) -> list[Row]:
        return [row for row in self.rows if row.worse]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _challenger(kind: ModelKind, version: str | None):
    if version is not None:
        return registry.get_version(kind, version)
    found = registry.version_by_alias(kind, registry.CHALLENGER)
    if found is None:
        raise LookupError(
            f"{kind.registered_name} has no `challenger` yet; run `ankang train {kind.noun}` first "
            "(every tracked training run registers one)"
        )
    return found


def _baseline(
    kind: ModelKind, *, challenger_version: str, models_dir: Path, workdir: Path
) -> tuple[ModelDir | None, str]:
    champion = registry.version_by_alias(kind, registry.CHAMPION)
    if champion is not None:
        if str(champion.version) == str(challenger_version):
            raise ValueError(f"{kind.registered_name} version {challenger_version} already is the champion")
        return registry.fetch_version(kind, champion, workdir / "champion"), f"champion (version {champion.version})"
    released = Path(models_dir) / kind.dir_name
    try:
        model = ModelDir.load(released)
    except ModelIntegrityError:
        return None, "none (no champion and no valid released model: promoted without comparison)"
    return model, f"released {released} (card version {model.version}; no champion alias yet)"


def _score_both(
    kind: ModelKind,
    baseline: ModelDir,
    challenger: ModelDir,
    *,
    heldout: PhotoHeldOut | RiskHeldOut,
    policy: PromotionPolicy,
    report_dir: Path,
) -> list[Row]:
    from rich.console import Console

    with Console(stderr=True).status("scoring champion and challenger on the same held-out data ..."):
        old = kind.evaluate(baseline.path, heldout=heldout, report_dir=report_dir / "champion")
        new = kind.evaluate(challenger.path, heldout=heldout, report_dir=report_dir / "challenger")
    return compare(old, new, policy)


def promote(
    kind: ModelKind,
    *,
    version: str | None = None,
    force: bool = False,
    heldout: PhotoHeldOut | RiskHeldOut,
    policy: PromotionPolicy = PromotionPolicy(),
    models_dir: Path,
    report_dir: Path,
    console=None,
    dry_run: bool = False,
) -> PromotionOutcome:
    from rich.console import Console

    console = console or Console()
    target = _challenger(kind, version)
    with tempfile.TemporaryDirectory(prefix="ankang-promote-") as scratch:
        workdir = Path(scratch)
        challenger = registry.fetch_version(kind, target, workdir / "challenger")  # parity check
        baseline, label = _baseline(
            kind, challenger_version=str(target.version), models_dir=models_dir, workdir=workdir
        )
        outcome = PromotionOutcome(promoted=False, version=str(target.version), baseline=label, report_dir=report_dir)
        if baseline is not None:
            outcome.rows = _score_both(
                kind, baseline, challenger, heldout=heldout, policy=policy, report_dir=report_dir
            )
            title = f"{kind.registered_name}: challenger version {target.version} vs {label}"
            console.print(rich_table(outcome.rows, title=title))
            write_report(
                report_dir,
                outcome.rows,
                title=title,
                summary={
                    "baseline": label,
                    "tolerance": policy.tolerance,
                    "source_tolerance": policy.source_tolerance,
                    "held-out data": {k: cell(v) for k, v in vars(heldout).items()},
                },
            )
        if dry_run:
            return outcome
        if outcome.worse and not force:
            _tag(kind, target.version, "promotion.refused", f"{_now()}: " + _worse_text(outcome.worse))
            return outcome
        if outcome.worse:
            outcome.overridden = [row.metric for row in outcome.worse]
            text = f"{_now()}: --force overrode {len(outcome.worse)} worse metric(s): " + _worse_text(outcome.worse)
            _tag(kind, target.version, "promotion.forced", text)
            console.print(f"[bold yellow]FORCED[/]: {text}", soft_wrap=True)
        outcome.released = _release(
            kind, target, challenger, models_dir=models_dir, label=label, forced=bool(outcome.overridden)
        )
        outcome.promoted = True
    return outcome


def _worse_text(rows: list[Row]) -> str:
    return "; ".join(f"{r.metric} {r.challenger:.4f} vs {r.champion:.4f} ({r.delta:+.4f})" for r in rows)


def _tag(kind: ModelKind, version: str, key: str, value: str) -> None:
    registry.client().set_model_version_tag(kind.registered_name, str(version), key, value[:MAX_TAG_CHARS])


def _release(kind: ModelKind, target, challenger: ModelDir, *, models_dir: Path, label: str, forced: bool) -> ModelDir:
    promoted_at = _now()
    entry = {
        "model": kind.registered_name,
        "version": str(target.version),
        "run_id": target.run_id,
        "promoted_at": promoted_at,
        "baseline": label,
        "forced": forced,
    }
    released = release(challenger, Path(models_dir) / kind.dir_name, registry=entry)
    client = registry.client()
    client.set_registered_model_alias(kind.registered_name, registry.CHAMPION, str(target.version))
    _tag(kind, target.version, "promotion.released", f"{promoted_at}: {released.path}")
    return released
