"""The tier decision: an expected-cost choice over the model's tier probabilities, then policy floors."""

from __future__ import annotations

import numpy as np


def cost_matrix(tiers: int, *, under_tier_cost: float = 1.0) -> np.ndarray:
    """Quadratic cost (k - j)^2, multiplied by `under_tier_cost` when the decision k is below the truth j."""
    k, j = np.meshgrid(np.arange(tiers), np.arange(tiers), indexing="ij")
    return (k - j) ** 2 * np.where(k < j, under_tier_cost, 1.0)


def decide_tiers(probabilities: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Expected-cost decision: the tier k minimising sum_j P(j) * cost[k, j]."""
    return (np.argmin(probabilities @ cost.T, axis=1) + 1).astype(np.int64)


def final_tiers(model_tier: np.ndarray, floor_tier: np.ndarray) -> np.ndarray:
    """A policy floor only ever raises the model's tier."""
    return np.maximum(model_tier, floor_tier)
