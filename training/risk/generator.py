"""Seeded synthetic enterprise populations with a latent-risk tier and its Bayes-optimal probabilities.

Tiers come from a latent risk `h(x) + v`: `h` is a nonlinear function of the observed profile and
`v` stands for everything the intake system never sees (management culture, local context) plus
rater noise. Because `v` is independent of the profile, P(tier | profile) has a closed form, which
is the oracle that evaluation reports next to the model. Features are correlated through an
unobserved compliance factor `u` that drives most of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import erf, sqrt

import numpy as np
import pandas as pd

from runtime.risk.schema import load_schema
from runtime.safe_csv import frame_to_csv
from training.risk.config import GeneratorConfig

INDUSTRY_HAZARD = {
    "construction": 0.9,
    "manufacturing": 0.5,
    "mining": 1.3,
    "hazardous_chemicals": 1.1,
    "transport_logistics": 0.6,
    "platform_services": 0.1,
    "catering_hospitality": 0.2,
    "retail_wholesale": -0.2,
    "services": -0.4,
    "other": 0.0,
}


@dataclass(frozen=True)
class Variant:
    """Everything that makes one population differ from another."""

    industry_mix: tuple[float, ...]
    ownership_mix: tuple[float, ...]
    compliance_shift: float  # mean of the latent compliance factor u (higher is worse)
    noise: str  # distribution of the unobserved risk v: normal | logistic
    noise_scale: float
    cuts: tuple[float, float, float, float]  # latent risk cut points between tiers
    weights: dict
    interactions: bool  # alt: arrears hurt more where contracts are missing, etc.


CITY = Variant(
    industry_mix=(0.12, 0.22, 0.01, 0.02, 0.07, 0.03, 0.12, 0.18, 0.18, 0.05),
    ownership_mix=(0.05, 0.80, 0.05, 0.10),
    compliance_shift=0.0,
    noise="normal",
    noise_scale=0.55,
    cuts=(1.0, 2.0, 3.0, 4.2),
    weights=dict(
        arrears_workers=0.55,
        arrears_cases=0.35,
        arrears_amount=0.2,
        complaints=0.35,
        petitions=0.45,
        arbitration=0.35,
        injuries=0.3,
        collective_petition=1.3,
        serious=1.1,
        mass=1.6,
        layoff_planned=0.4,
        layoff_in_progress=0.9,
        contract_gap=2.2,
        insurance_gap=1.6,
        insurance_arrears=0.12,
        overtime=0.012,
        low_wage=1.4,
        dispatch=0.8,
        platform=0.6,
        credit_b=0.9,
        credit_c=1.6,
        credit_unknown=0.15,
        violations=0.4,
        unrectified=0.7,
        photo=0.2,
        major_photo=0.6,
        congress=-0.3,
        collective_contract=-0.25,
        industry=0.25,
        no_union_size=0.06,
    ),
    interactions=False,
)

ALT = Variant(
    industry_mix=(0.20, 0.12, 0.04, 0.05, 0.15, 0.12, 0.08, 0.10, 0.10, 0.04),
    ownership_mix=(0.10, 0.65, 0.10, 0.15),
    compliance_shift=0.35,
    noise="logistic",
    noise_scale=0.35,
    cuts=(1.4, 2.5, 3.6, 4.9),
    weights=dict(
        arrears_workers=0.35,
        arrears_cases=0.5,
        arrears_amount=0.35,
        complaints=0.5,
        petitions=0.3,
        arbitration=0.5,
        injuries=0.5,
        collective_petition=1.0,
        serious=1.6,
        mass=1.2,
        layoff_planned=0.7,
        layoff_in_progress=1.2,
        contract_gap=1.5,
        insurance_gap=2.2,
        insurance_arrears=0.2,
        overtime=0.02,
        low_wage=0.9,
        dispatch=1.2,
        platform=1.0,
        credit_b=1.2,
        credit_c=2.0,
        credit_unknown=0.4,
        violations=0.6,
        unrectified=1.0,
        photo=0.35,
        major_photo=0.4,
        congress=-0.5,
        collective_contract=-0.4,
        industry=0.45,
        no_union_size=0.12,
    ),
    interactions=True,
)
VARIANTS = {"city": CITY, "alt": ALT}


def generate(config: GeneratorConfig) -> pd.DataFrame:
    """A population of `config.rows` enterprises with the schema's columns plus `tier`."""
    frame, _ = generate_with_oracle(config)
    return frame


def generate_with_oracle(config: GeneratorConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The population and the Bayes-optimal P(tier = 1..5 | profile), shape (rows, 5)."""
    if config.variant not in VARIANTS:
        raise ValueError(f"unknown variant {config.variant!r}; choose one of {sorted(VARIANTS)}")
    variant = VARIANTS[config.variant]
    rng = np.random.default_rng([config.seed, sorted(VARIANTS).index(config.variant)])
    frame = _profiles(rng, config.rows, variant)
    risk = latent_risk(frame, variant)
    unobserved = _unobserved(rng, config.rows, variant)
    frame["tier"] = (np.searchsorted(np.asarray(variant.cuts), risk + unobserved) + 1).astype("int64")
    frame.insert(
        0,
        "enterprise_id",
        [f"{config.variant[0].upper()}{config.seed % 10000:04d}-{i:07d}" for i in range(config.rows)],
    )
    _blank_at_random(rng, frame, config.missing_rate)
    return frame, oracle_probabilities(risk, variant)


def oracle_probabilities(risk: np.ndarray, variant: Variant) -> np.ndarray:
    cdf = _noise_cdf(variant)
    cumulative = np.stack([cdf((cut - risk) / variant.noise_scale) for cut in variant.cuts], axis=1)
    bounded = np.hstack([np.zeros((len(risk), 1)), cumulative, np.ones((len(risk), 1))])
    return np.diff(bounded, axis=1)


def _noise_cdf(variant: Variant):
    if variant.noise == "normal":
        return np.vectorize(lambda z: 0.5 * (1.0 + erf(z / sqrt(2.0))), otypes=[float])
    return lambda z: 1.0 / (1.0 + np.exp(-z))


def _unobserved(rng: np.random.Generator, rows: int, variant: Variant) -> np.ndarray:
    if variant.noise == "normal":
        return rng.normal(0.0, variant.noise_scale, rows)
    return rng.logistic(0.0, variant.noise_scale, rows)


def latent_risk(frame: pd.DataFrame, variant: Variant) -> np.ndarray:
    """The observable part h(x) of the latent risk (non-decreasing in every +1 risk_direction field)."""
    w, f = variant.weights, frame
    gap = lambda column, level: np.clip(level - f[column].to_numpy(float), 0.0, None)  # noqa: E731
    log1p = lambda column: np.log1p(f[column].to_numpy(float))  # noqa: E731
    risk = (
        w["arrears_workers"] * log1p("wage_arrears_workers_12m")
        + w["arrears_cases"] * log1p("wage_arrears_cases_12m")
        + w["arrears_amount"] * np.log1p(f["wage_arrears_amount_12m"].to_numpy(float) / 1e4)
        + w["complaints"] * log1p("complaints_12m")
        + w["petitions"] * log1p("petitions_12m")
        + w["arbitration"] * log1p("arbitration_cases_12m")
        + w["injuries"] * log1p("work_injury_cases_12m")
        + w["collective_petition"] * f["collective_petition_12m"]
        + w["serious"] * f["serious_injury_or_fatality_12m"]
        + w["mass"] * np.minimum(f["mass_incident_36m"], 2)
        + w["contract_gap"] * gap("contract_signing_rate", 0.95)
        + w["layoff_planned"] * (f["layoff_or_relocation"] == "planned")
        + w["layoff_in_progress"] * (f["layoff_or_relocation"] == "in_progress")
        + w["insurance_gap"] * gap("social_insurance_coverage", 0.9)
        + w["insurance_arrears"] * np.minimum(f["social_insurance_arrears_months"], 12)
        + w["overtime"] * np.clip(f["avg_monthly_overtime_hours"] - 36.0, 0.0, None)
        + w["low_wage"] * gap("wage_to_local_minimum_ratio", 1.3)
        + w["dispatch"] * f["share_dispatch_workers"]
        + w["platform"] * f["share_platform_workers"]
        + w["credit_b"] * (f["credit_grade"] == "B")
        + w["credit_c"] * (f["credit_grade"] == "C")
        + w["credit_unknown"] * (f["credit_grade"] == "unknown")
        + w["violations"] * log1p("violations_sanctioned_36m")
        + w["unrectified"] * f["unrectified_order"]
        + w["photo"] * log1p("open_photo_hazards")
        + w["major_photo"] * log1p("open_major_photo_hazards")
        + w["congress"] * f["has_workers_congress"]
        + w["collective_contract"] * f["has_collective_contract"]
        + w["industry"] * f["industry"].map(INDUSTRY_HAZARD).to_numpy(float)
        + w["no_union_size"] * (f["union_type"] == "none") * np.log(f["headcount"].to_numpy(float))
    )
    risk = np.array(risk, dtype=float)
    if variant.interactions:
        risk += 0.8 * log1p("wage_arrears_workers_12m") * gap("contract_signing_rate", 1.0)
        risk += 0.4 * np.sqrt(f["share_migrant_workers"].to_numpy(float)) * log1p("complaints_12m")
    return risk


def _profiles(rng: np.random.Generator, rows: int, variant: Variant) -> pd.DataFrame:
    schema = load_schema()
    industry = rng.choice(schema.categories["industry"], size=rows, p=variant.industry_mix)
    ownership = rng.choice(schema.categories["ownership"], size=rows, p=variant.ownership_mix)
    compliance = rng.normal(variant.compliance_shift, 1.0, rows)  # u: higher is worse, never observed
    hazard = pd.Series(industry).map(INDUSTRY_HAZARD).to_numpy(float)
    size = _headcount(rng, industry, ownership)
    frame = pd.DataFrame(
        {
            "industry": industry,
            "union_type": _union_type(rng, size, industry),
            "ownership": ownership,
            "headcount": size,
            "firm_age_years": np.round(rng.gamma(2.0, 5.0, rows) + 0.2, 1),
        }
    )
    frame = frame.join(_workforce(rng, industry, compliance))
    frame = frame.join(_incidents(rng, size, hazard, compliance, frame["contract_signing_rate"].to_numpy()))
    frame = frame.join(_governance(rng, size, ownership, compliance, frame))
    return frame


def _headcount(rng, industry: np.ndarray, ownership: np.ndarray) -> np.ndarray:
    log_mean = (
        3.2
        + 0.6 * np.isin(industry, ["manufacturing", "mining", "hazardous_chemicals"])
        - 1.3 * (ownership == "individual")
        + 0.9 * (ownership == "state")
        + 0.5 * (ownership == "foreign")
    )
    return np.maximum(1, np.round(rng.lognormal(log_mean, 1.1))).astype("int64")


def _union_type(rng, size: np.ndarray, industry: np.ndarray) -> np.ndarray:
    has_own = rng.random(len(size)) < 1 / (1 + np.exp(-(np.log(size) - 4.0)))
    shared = rng.choice(
        ["community", "industrial_park", "industry", "building", "market", "joint", "other"],
        size=len(size),
        p=[0.25, 0.2, 0.15, 0.12, 0.08, 0.15, 0.05],
    )
    platform = (industry == "platform_services") & (rng.random(len(size)) < 0.5)
    union = np.where(has_own, np.where(rng.random(len(size)) < 0.1, "group", "enterprise"), shared)
    union = np.where(platform, "platform", union)
    return np.where(rng.random(len(size)) < 0.22 + 0.1 * (size < 20), "none", union)


def _logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _workforce(rng, industry: np.ndarray, u: np.ndarray) -> pd.DataFrame:
    rows = len(u)
    migrant_heavy = np.isin(industry, ["construction", "manufacturing", "catering_hospitality", "transport_logistics"])
    platform_share = np.where(
        industry == "platform_services",
        rng.beta(5, 2, rows),
        np.where(industry == "transport_logistics", rng.beta(1, 5, rows), rng.beta(0.15, 30, rows)),
    )
    return pd.DataFrame(
        {
            "share_migrant_workers": np.round(rng.beta(np.where(migrant_heavy, 4, 1.5), 3, rows), 3),
            "share_dispatch_workers": np.round(rng.beta(0.6, 9, rows) * _logistic(0.6 * u + 0.5) * 1.6, 3).clip(0, 1),
            "share_platform_workers": np.round(platform_share, 3),
            "contract_signing_rate": np.round(
                _logistic(3.2 - 0.9 * u - 0.8 * (industry == "construction") + rng.normal(0, 0.7, rows)), 3
            ),
            "social_insurance_coverage": np.round(
                _logistic(2.4 - 0.9 * u - 0.6 * migrant_heavy + rng.normal(0, 0.8, rows)), 3
            ),
            "social_insurance_arrears_months": rng.poisson(np.exp(-3.0 + 1.2 * u)),
            "avg_monthly_overtime_hours": np.round(
                np.minimum(rng.gamma(2.0, 10.0 + 8.0 * migrant_heavy, rows) * np.exp(0.25 * u), 300.0), 1
            ),
            "wage_to_local_minimum_ratio": np.round(np.maximum(0.6, rng.lognormal(np.log(1.7) - 0.08 * u, 0.3)), 2),
        }
    )


def _incidents(rng, size: np.ndarray, hazard: np.ndarray, u: np.ndarray, contracts: np.ndarray) -> pd.DataFrame:
    log_size = np.log(size)
    cases = rng.poisson(np.exp(-3.6 + 1.2 * u + 0.25 * log_size + 0.3 * hazard - 1.0 * (contracts - 0.8)))
    workers = np.where(cases > 0, cases * (1 + rng.poisson(np.minimum(size, 200) * 0.08)), 0)
    complaints = rng.poisson(np.exp(-2.0 + 0.8 * u + 0.35 * log_size) + 0.6 * cases)
    injuries = rng.poisson(np.exp(-4.2 + 0.8 * hazard + 0.4 * u + 0.45 * log_size))
    return pd.DataFrame(
        {
            "wage_arrears_cases_12m": cases,
            "wage_arrears_workers_12m": workers,
            "wage_arrears_amount_12m": np.round(workers * rng.lognormal(np.log(7000), 0.6, len(u)), 0),
            "complaints_12m": complaints,
            "petitions_12m": rng.poisson(np.exp(-3.3 + 0.9 * u) + 0.3 * cases),
            "arbitration_cases_12m": rng.poisson(np.exp(-3.0 + 0.6 * u + 0.3 * log_size)),
            "work_injury_cases_12m": injuries,
            "collective_petition_12m": rng.random(len(u))
            < _logistic(-6.5 + 1.0 * u + 1.2 * (cases > 0) + 0.2 * log_size),
            "serious_injury_or_fatality_12m": rng.random(len(u))
            < _logistic(-6.8 + 1.2 * hazard + 0.3 * u + 0.3 * log_size),
        }
    )


def _governance(rng, size: np.ndarray, ownership: np.ndarray, u: np.ndarray, frame: pd.DataFrame) -> pd.DataFrame:
    rows, log_size = len(u), np.log(size)
    layoff = rng.choice(["none", "planned", "in_progress"], size=rows, p=[0.93, 0.04, 0.03])
    mass = rng.poisson(np.exp(-6.0 + 1.1 * u + 1.6 * (layoff != "none") + 0.2 * log_size))
    violations = rng.poisson(np.exp(-2.8 + 1.0 * u + 0.1 * log_size))
    has_union = frame["union_type"].to_numpy() != "none"
    congress = rng.random(rows) < _logistic(
        -3.0 + 0.8 * log_size + 1.5 * (ownership == "state") + 1.0 * has_union - 0.4 * u
    )
    collective = rng.random(rows) < _logistic(-2.5 + 0.6 * log_size + 1.2 * has_union - 0.3 * u)
    grade_score = 0.9 * u + 0.7 * violations + 2.0 * (mass > 0) + rng.normal(0, 0.5, rows)
    graded = rng.random(rows) < _logistic(0.8 + 0.5 * log_size)
    grade = np.where(grade_score > 4.6, "C", np.where(grade_score > 3.6, "B", "A"))
    open_photo = rng.poisson(
        np.exp(-1.6 + 0.7 * np.maximum(frame["industry"].map(INDUSTRY_HAZARD), 0) + 0.3 * u + 0.2 * log_size)
    )
    return pd.DataFrame(
        {
            "layoff_or_relocation": layoff,
            "mass_incident_36m": mass,
            "has_workers_congress": congress,
            "has_collective_contract": collective,
            "credit_grade": np.where(graded, grade, "unknown"),
            "violations_sanctioned_36m": violations,
            "unrectified_order": rng.random(rows) < _logistic(-4.5 + 0.9 * u + 0.8 * (violations > 0)),
            "open_photo_hazards": open_photo,
            "open_major_photo_hazards": rng.binomial(open_photo, 0.08),
        }
    )


def _blank_at_random(rng: np.random.Generator, frame: pd.DataFrame, rate: float) -> None:
    if rate <= 0:
        return
    for column in load_schema().features:
        mask = rng.random(len(frame)) < rate
        if mask.any():
            frame[column] = frame[column].astype(object).where(~mask, None)


def write_population(config: GeneratorConfig, out) -> tuple:
    """Write the population (CSV or Parquet by suffix) and `<stem>.oracle.parquet` with P(tier) per enterprise."""
    from pathlib import Path

    out = Path(out)
    frame, oracle = generate_with_oracle(config)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False) if out.suffix.lower() == ".parquet" else frame_to_csv(frame, out)
    sidecar = out.with_name(out.name.split(".")[0] + ".oracle.parquet")
    columns = {f"p_tier_{t}": oracle[:, t - 1] for t in range(1, 6)}
    pd.DataFrame({"enterprise_id": frame["enterprise_id"], **columns}).to_parquet(sidecar, index=False)
    return out, sidecar


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m training.risk.generator",
        description="Write a synthetic enterprise population with historical tiers "
        "(and its oracle probabilities beside it) for `ankang train risk --data`.",
    )
    defaults = GeneratorConfig()
    parser.add_argument("--rows", type=int, default=defaults.rows, help=f"enterprises (default: {defaults.rows})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"seed (default: {defaults.seed})")
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        default=defaults.variant,
        help="city: default population; alt: differently built (industry mix, weights, "
        "interactions, logistic noise, cut points)",
    )
    parser.add_argument(
        "--missing-rate", type=float, default=defaults.missing_rate, help="share of blank feature cells"
    )
    parser.add_argument("--out", required=True, help="output .csv or .parquet")
    args = parser.parse_args(argv)
    config = GeneratorConfig(rows=args.rows, seed=args.seed, variant=args.variant, missing_rate=args.missing_rate)
    out, sidecar = write_population(config, args.out)
    print(f"wrote {config.rows} enterprises to {out} and oracle probabilities to {sidecar}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
