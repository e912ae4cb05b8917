"""Typed configs: the single source of defaults for the risk generator and model."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.paths import CANDIDATES_DIR, recorded_path
from training.config_options import add_dataclass_arguments as generic_arguments
from training.config_options import dataclass_from_args

STRATEGIES = ("cumulative", "multiclass", "regression")


@dataclass
class GeneratorConfig:
    """A synthetic enterprise population (see datasets/labor_risk/README.md)."""

    rows: int = 100_000
    seed: int = 20260101
    variant: str = "city"  # city: the default population; alt: a differently built one
    missing_rate: float = 0.0  # share of feature cells blanked at random (MCAR) after tiering


@dataclass(frozen=True)
class HeldOutPopulation:
    """The generated population risk models are evaluated and promoted on; its seed is not the
    training population's, so no enterprise of it was trained on."""

    rows: int = 20_000
    seed: int = 4242

    def generator(self) -> GeneratorConfig:
        return GeneratorConfig(rows=self.rows, seed=self.seed)


RISK_HOLDOUT = HeldOutPopulation()


@dataclass
class RiskModelConfig:
    """LightGBM pipeline for the schema's risk tiers; every field is a command-line option."""

    strategy: str = "cumulative"  # ordinal strategy: cumulative | multiclass | regression
    n_estimators: int = 60
    learning_rate: float = 0.3
    num_leaves: int = 7
    min_child_samples: int = 40
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    monotone: bool = True  # monotone constraints from the schema's risk_direction
    under_tier_cost: float = 1.0  # cost multiplier for under-grading in the expected-cost decision
    early_stopping_rounds: int = 30
    validation_fraction: float = 0.1
    seed: int = 7
    # LightGBM's threads wait for each other at every split, so a thread that loses its core stalls
    # the fit: on this shared 2-core machine 2 threads took 13x (42.7 s against 3.2 s) and, next to a
    # busy core, 15x (106 s against 7.3 s) as long as 1 (benchmarks/results/risk_threads.json).
    n_jobs: int = 1
    out: Path = field(default_factory=lambda: CANDIDATES_DIR / "labor_risk")  # ankang train: .../labor_risk/<version>/
    version: str = ""  # "": <date>-<sha256 prefix> of the exported model (see model_version)

    def to_dict(self) -> dict[str, Any]:
        return {
            key: (recorded_path(value) if isinstance(value, Path) else value) for key, value in asdict(self).items()
        }


def model_version(created: time.struct_time, sha256: str) -> str:
    """Every exported model its own version: the day it was made and its file's sha256 prefix
    (the photo model's scheme), so two trainings that differ in anything get different versions."""
    return f"{time.strftime('%Y.%m.%d', created)}-{sha256[:8]}"


FIELD_HELP = {
    "strategy": f"ordinal strategy; only cumulative exports to ONNX ({', '.join(STRATEGIES)})",
    "n_estimators": "maximum trees per LightGBM model (early stopping may use fewer)",
    "learning_rate": "LightGBM learning rate",
    "num_leaves": "leaves per tree",
    "min_child_samples": "minimum enterprises per leaf",
    "subsample": "row share per tree (bagging)",
    "colsample_bytree": "feature share per tree",
    "reg_lambda": "L2 regularisation of leaf values",
    "monotone": "monotone constraints from the schema's risk_direction (more arrears never lowers risk)",
    "under_tier_cost": "decision cost multiplier for grading below the true tier (>1 favours higher tiers)",
    "early_stopping_rounds": "stop a model after this many rounds without validation improvement",
    "validation_fraction": "share of training rows held out for early stopping",
    "seed": "random seed of splits and LightGBM",
    "n_jobs": "LightGBM threads (1: measured fastest on a shared machine, benchmarks/README.md)",
    "out": "model directory to write (model.onnx + card.json; the default: a new var/candidates/labor_risk/<version>/)",
    "version": "model version written to card.json (default: <date>-<first 8 hex of the model's sha256>)",
}


def add_dataclass_arguments(parser, config_cls, *, skip: tuple[str, ...] = ()) -> None:
    """Expose every field of a config dataclass as `--field-name` with its default in --help."""
    generic_arguments(parser, config_cls, help=FIELD_HELP, skip=skip, choices={"strategy": STRATEGIES})


def config_from_args(config_cls, args) -> Any:
    return dataclass_from_args(config_cls, args)
