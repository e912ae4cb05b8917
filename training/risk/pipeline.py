"""The scikit-learn pipeline: imputation + one-hot encoding, then an ordinal LightGBM model.

Three ordinal strategies (measured against each other by `ankang evaluate risk-strategies`):
  cumulative  one binary LightGBM model per P(tier > k), monotone constraints, non-crossing by
              rearrangement (each row's curve sorted); tier probabilities are their differences
              (the released choice)
  multiclass  one softmax LightGBM model (monotone constraints are meaningless per class, so none)
  regression  LightGBM regression on the tier with monotone constraints, cut points tuned for QWK
All three keep probabilities unweighted (calibrated); class imbalance is handled in the decision,
an expected-cost rule that can charge under-grading more (`under_tier_cost`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from runtime.risk.schema import RiskSchema
from runtime.risk.validate import validate_frame
from training.risk.config import RiskModelConfig


def feature_frame(schema: RiskSchema, frame: pd.DataFrame, *, text_cells: bool = False) -> pd.DataFrame:
    """Validated model inputs (the runtime's validation, as served): numeric as float (NaN missing),
    categories ("" missing)."""
    batch = validate_frame(schema, frame, text_cells=text_cells)
    columns = {
        name: batch.numeric[name] if name in batch.numeric else batch.categorical[name] for name in schema.features
    }
    return pd.DataFrame(columns)


def monotone_directions(schema: RiskSchema) -> list[int]:
    """LightGBM monotone constraints for the numeric features (categories are one-hot, unconstrained)."""
    return [int(schema.fields[name].risk_direction or 0) for name in schema.numeric_features]


def build_preprocessor(schema: RiskSchema) -> ColumnTransformer:
    categories = [list(schema.fields[name].categories) for name in schema.categorical_features]
    encode = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent", missing_values="", keep_empty_features=True)),
            ("one_hot", OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median", keep_empty_features=True), schema.numeric_features),
            ("categorical", encode, schema.categorical_features),
        ]
    )


def build_pipeline(schema: RiskSchema, config: RiskModelConfig) -> Pipeline:
    n_encoded = sum(len(schema.fields[name].categories) for name in schema.categorical_features)
    monotone = monotone_directions(schema) + [0] * n_encoded if config.monotone else None
    model_cls = {"cumulative": CumulativeLGBM, "multiclass": MulticlassLGBM, "regression": RegressionLGBM}[
        config.strategy
    ]
    model = model_cls(config=config, tiers=schema.tiers, monotone=monotone)
    return Pipeline([("prep", build_preprocessor(schema)), ("model", model)])


def _lgbm_params(config: RiskModelConfig) -> dict:
    return dict(
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        num_leaves=config.num_leaves,
        min_child_samples=config.min_child_samples,
        subsample=config.subsample,
        subsample_freq=1,
        colsample_bytree=config.colsample_bytree,
        reg_lambda=config.reg_lambda,
        random_state=config.seed,
        n_jobs=config.n_jobs,
        verbose=-1,
    )


class _OrdinalBase(BaseEstimator, ClassifierMixin):
    def __init__(self, *, config: RiskModelConfig, tiers: tuple[int, ...], monotone: list[int] | None = None):
        self.config = config
        self.tiers = tiers
        self.monotone = monotone

    def _split(self, X: np.ndarray, y: np.ndarray):
        return train_test_split(
            X, y, test_size=self.config.validation_fraction, random_state=self.config.seed, stratify=y
        )

    def _fit_one(self, model, X, y, X_val, y_val):
        import lightgbm

        stop = [lightgbm.early_stopping(self.config.early_stopping_rounds, verbose=False)]
        return model.fit(X, y, eval_X=(X_val,), eval_y=(y_val,), callbacks=stop)

    def predict(self, X) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1) + 1


class CumulativeLGBM(_OrdinalBase):
    """P(tier > k) for every tier k but the last, by one monotone binary LightGBM model each."""

    def fit(self, X, y):
        from lightgbm import LGBMClassifier

        y = np.asarray(y)
        X_fit, X_val, y_fit, y_val = self._split(np.asarray(X, dtype=float), y)
        params = _lgbm_params(self.config) | ({"monotone_constraints": self.monotone} if self.monotone else {})
        self.estimators_ = [
            self._fit_one(LGBMClassifier(**params), X_fit, (y_fit > k).astype(int), X_val, (y_val > k).astype(int))
            for k in self.tiers[:-1]
        ]
        self.classes_ = np.asarray(self.tiers)
        return self

    def exceedance(self, X) -> np.ndarray:
        """The models' P(tier > k), shape (rows, tiers - 1); separately fitted, they may cross."""
        return np.column_stack([model.predict_proba(X)[:, 1] for model in self.estimators_])

    def predict_proba(self, X) -> np.ndarray:
        return rearranged_tier_probabilities(self.exceedance(np.asarray(X, dtype=float)))


def rearranged_tier_probabilities(exceedance: np.ndarray) -> np.ndarray:
    """P(tier = k) from the cumulative models' P(tier > k), made non-increasing by sorting each row.

    Rearrangement (Chernozhukov, Fernández-Val and Galichon 2010) never moves the curve further from
    a monotone truth; the running minimum it replaces set P(tier > 4) down to P(tier > 3) where the
    models crossed, which made P(tier = 4) exactly 0 while tiers 3 and 5 kept their mass.
    """
    above = -np.sort(-exceedance, axis=1)
    ones, zeros = np.ones((len(above), 1)), np.zeros((len(above), 1))
    return np.hstack([ones, above]) - np.hstack([above, zeros])


class MulticlassLGBM(_OrdinalBase):
    def fit(self, X, y):
        from lightgbm import LGBMClassifier

        # labels 0..4: LightGBM 4.7 label-encodes y but not eval_y, so tiers 1..5 would spoil early stopping
        X_fit, X_val, y_fit, y_val = self._split(np.asarray(X, dtype=float), np.asarray(y) - 1)
        self.estimator_ = self._fit_one(
            LGBMClassifier(objective="multiclass", **_lgbm_params(self.config)), X_fit, y_fit, X_val, y_val
        )
        self.classes_ = self.estimator_.classes_ + 1
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self.estimator_.predict_proba(np.asarray(X, dtype=float))


class RegressionLGBM(_OrdinalBase):
    """Regression on the tier number; cut points chosen on the validation split to maximise QWK."""

    def fit(self, X, y):
        from lightgbm import LGBMRegressor

        X_fit, X_val, y_fit, y_val = self._split(np.asarray(X, dtype=float), np.asarray(y))
        params = _lgbm_params(self.config) | ({"monotone_constraints": self.monotone} if self.monotone else {})
        self.estimator_ = self._fit_one(LGBMRegressor(**params), X_fit, y_fit, X_val, y_val)
        self.cuts_ = tune_cuts(self.estimator_.predict(X_val), y_val, tiers=self.tiers)
        self.classes_ = np.asarray(self.tiers)
        return self

    def predict(self, X) -> np.ndarray:
        return np.searchsorted(self.cuts_, self.estimator_.predict(np.asarray(X, dtype=float))) + 1

    def predict_proba(self, X) -> np.ndarray:
        """No probabilities from a regression: a one-hot of the predicted tier (so calibration is poor)."""
        return np.eye(len(self.tiers))[self.predict(X) - 1]


def tune_cuts(score: np.ndarray, y: np.ndarray, *, tiers: tuple[int, ...], sweeps: int = 3) -> np.ndarray:
    """Coordinate search over the cut points between the tiers for the highest QWK."""
    from sklearn.metrics import cohen_kappa_score

    cuts = np.asarray(tiers[:-1], dtype=float) + 0.5
    for _ in range(sweeps):
        for i in range(len(cuts)):
            low = cuts[i - 1] if i else score.min()
            high = cuts[i + 1] if i + 1 < len(cuts) else score.max()
            grid = np.linspace(low, high, 25)[1:-1]
            kappas = [
                cohen_kappa_score(y, np.searchsorted(np.r_[cuts[:i], c, cuts[i + 1 :]], score) + 1, weights="quadratic")
                for c in grid
            ]
            cuts[i] = grid[int(np.argmax(kappas))] if len(grid) else cuts[i]
    return cuts
