"""Drift: what the service saw recently versus what the released model was trained on.

Population stability index PSI = sum over bins of (recent - reference) * ln(recent / reference),
shares clipped at 1e-4. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major.

Photos: the released card's test-split flag rate at its thresholds ((tp + fp) / n) versus the
share of assessed photos flagged in the review store (two-bin PSI per flag), and the triage mix
of the recent window versus the window before it. Risk: every feature's distribution (deciles
of the reference for numbers, categories for categories, missing as its own bin) and the
predicted tier of the reference data versus a recent file of enterprise profiles.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

EPSILON = 1e-4
STABLE, MAJOR = 0.1, 0.25


def psi(reference: np.ndarray, recent: np.ndarray) -> float:
    """PSI of two share vectors over the same bins (each normalised to sum 1)."""
    reference = np.clip(np.asarray(reference, float) / max(np.sum(reference), 1e-12), EPSILON, None)
    recent = np.clip(np.asarray(recent, float) / max(np.sum(recent), 1e-12), EPSILON, None)
    return float(np.sum((recent - reference) * np.log(recent / reference)))


def level(value: float | None) -> str:
    if value is None or np.isnan(value):
        return "–"
    return "stable" if value < STABLE else ("moderate" if value < MAJOR else "MAJOR")


def binary_psi(reference_rate: float, recent_rate: float) -> float:
    return psi(np.array([reference_rate, 1 - reference_rate]), np.array([recent_rate, 1 - recent_rate]))


def numeric_bins(reference: np.ndarray, *, bins: int = 10) -> np.ndarray:
    """Inner edges: the reference's deciles (duplicates dropped)."""
    finite = reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.array([])
    return np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))


def numeric_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per decile bin plus a last bin for missing values."""
    values = np.asarray(values, float)
    missing = ~np.isfinite(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
    return np.append(counts, missing.sum()).astype(float)


def category_shares(values: np.ndarray, categories: list[str]) -> np.ndarray:
    """Counts per category, then other, then missing ("")."""
    values = pd.Series(values).fillna("").astype(str)
    counts = [int((values == c).sum()) for c in categories]
    missing = int((values == "").sum())
    return np.array([*counts, len(values) - sum(counts) - missing, missing], dtype=float)


@dataclass(frozen=True)
class DriftRow:
    name: str
    reference: str
    recent: str
    psi: float

    @property
    def level(self) -> str:
        return level(self.psi)


def feature_drift(
    reference: pd.DataFrame, recent: pd.DataFrame, *, categorical: dict[str, list[str]]
) -> list[DriftRow]:
    """PSI per column of two validated feature frames (numbers: NaN missing; categories: "" missing)."""
    rows = []
    for name in reference.columns:
        if name in categorical:
            old, new = (category_shares(frame[name].to_numpy(), categorical[name]) for frame in (reference, recent))
            modes = [categorical[name][int(np.argmax(shares[: len(categorical[name])]))] for shares in (old, new)]
            rows.append(DriftRow(name, f"mode {modes[0]}", f"mode {modes[1]}", psi(old, new)))
        else:
            edges = numeric_bins(reference[name].to_numpy(float))
            old, new = (numeric_shares(frame[name].to_numpy(float), edges) for frame in (reference, recent))
            rows.append(
                DriftRow(
                    name,
                    f"median {np.nanmedian(reference[name]):.3g}",
                    f"median {np.nanmedian(recent[name]):.3g}",
                    psi(old, new),
                )
            )
    return sorted(rows, key=lambda row: -row.psi)


def tier_drift(reference_tiers: np.ndarray, recent_tiers: np.ndarray, tiers=(1, 2, 3, 4, 5)) -> DriftRow:
    old = np.array([(reference_tiers == t).sum() for t in tiers], float)
    new = np.array([(recent_tiers == t).sum() for t in tiers], float)
    share = lambda counts: " ".join(f"{c / max(counts.sum(), 1):.2f}" for c in counts)  # noqa: E731
    return DriftRow("predicted tier (1..5 shares)", share(old), share(new), psi(old, new))


def card_flag_rates(card: dict) -> dict[str, float]:
    """Predicted-positive rate per flag on the card's test split at the card's thresholds."""
    rates = {}
    for flag, entry in card.get("metrics", {}).get("test", {}).items():
        if entry.get("n"):
            rates[flag] = (entry["tp"] + entry["fp"]) / entry["n"]
    return rates


def photo_drift(card: dict, cases: pd.DataFrame, *, now: dt.datetime, days: int) -> dict:
    """Flag rates and triage mix of the last `days` days of `cases` (columns created_at, triage,
    flagged: list of flags) against the card, and against the `days` before them."""
    created = pd.to_datetime(cases["created_at"])
    recent = cases[created >= now - dt.timedelta(days=days)]
    before = cases[(created < now - dt.timedelta(days=days)) & (created >= now - dt.timedelta(days=2 * days))]
    flag_rows = []
    for flag, reference in card_flag_rates(card).items():
        if recent.empty:
            continue
        rate = float(np.mean([flag in (flags or []) for flags in recent["flagged"]]))
        flag_rows.append(DriftRow(flag, f"{reference:.3f}", f"{rate:.3f}", binary_psi(reference, rate)))
    triage_levels = sorted(set(cases["triage"])) if not cases.empty else []
    mix = lambda frame: np.array([(frame["triage"] == t).sum() for t in triage_levels], float)  # noqa: E731
    triage = None
    if len(recent) and len(before):
        triage = DriftRow(
            "triage mix (" + "/".join(triage_levels) + ")",
            _shares(mix(before)),
            _shares(mix(recent)),
            psi(mix(before), mix(recent)),
        )
    return {
        "recent": len(recent),
        "before": len(before),
        "flags": flag_rows,
        "triage": triage,
        "triage_levels": triage_levels,
        "triage_recent": mix(recent).tolist() if len(recent) else [],
        "triage_before": mix(before).tolist() if len(before) else [],
    }


def _shares(counts: np.ndarray) -> str:
    return " ".join(f"{c / max(counts.sum(), 1):.2f}" for c in counts)
