"""The synthetic enterprise population: determinism, base rates, the oracle, and schema conformance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from runtime.risk.schema import load_schema
from runtime.risk.tiers import cost_matrix, decide_tiers
from runtime.risk.validate import validate_frame
from training.risk.config import GeneratorConfig
from training.risk.generator import generate, generate_with_oracle, write_population


@pytest.fixture(scope="module")
def city():
    return generate_with_oracle(GeneratorConfig(rows=40_000, seed=11))


def test_same_seed_gives_identical_population_and_oracle():
    first, first_oracle = generate_with_oracle(GeneratorConfig(rows=2_000, seed=3))
    second, second_oracle = generate_with_oracle(GeneratorConfig(rows=2_000, seed=3))
    pd.testing.assert_frame_equal(first, second)
    np.testing.assert_array_equal(first_oracle, second_oracle)
    other = generate(GeneratorConfig(rows=2_000, seed=4))
    assert not first["headcount"].equals(other["headcount"])


def test_columns_are_the_schema_plus_tier_and_pass_serving_validation(city):
    frame, _ = city
    schema = load_schema()
    assert list(frame.columns) == list(schema.fields) + ["tier"]
    batch = validate_frame(schema, frame.drop(columns=["tier"]), text_cells=False)
    assert not batch.missing.any()


def test_base_rates_most_enterprises_are_low_risk(city):
    frame, _ = city
    shares = frame["tier"].value_counts(normalize=True).sort_index()
    assert list(shares.index) == [1, 2, 3, 4, 5]
    assert 0.55 <= shares[1] <= 0.75 and 0.02 <= shares[5] <= 0.05
    assert shares[1] > shares[2] > shares[3] > shares[4]
    graded = frame.loc[frame["credit_grade"] != "unknown", "credit_grade"].value_counts(normalize=True)
    assert (
        graded["A"] > 0.985 and 0.002 < graded["B"] < 0.01 and 0.0005 < graded["C"] < 0.005
    )  # city 2020: 99.3/0.54/0.19 %


def test_oracle_is_a_calibrated_distribution_over_tiers(city):
    frame, oracle = city
    np.testing.assert_allclose(oracle.sum(axis=1), 1.0, atol=1e-9)
    observed = frame["tier"].value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(oracle.mean(axis=0), observed, atol=0.01)
    qwk = cohen_kappa_score(frame["tier"], decide_tiers(oracle, cost_matrix(5)), weights="quadratic")
    assert 0.85 < qwk < 0.92  # noisy, unobserved factors: even the oracle is far from perfect


def test_correlated_features_through_the_unobserved_compliance_factor(city):
    frame, _ = city
    corr = frame[["contract_signing_rate", "social_insurance_coverage", "violations_sanctioned_36m"]].corr(
        method="spearman"
    )
    assert corr.loc["contract_signing_rate", "social_insurance_coverage"] > 0.1
    assert corr.loc["contract_signing_rate", "violations_sanctioned_36m"] < -0.05


def test_alt_variant_is_a_differently_built_population():
    alt = generate(GeneratorConfig(rows=20_000, seed=11, variant="alt"))
    city = generate(GeneratorConfig(rows=20_000, seed=11))
    assert alt["tier"].mean() > city["tier"].mean() + 0.2
    assert (alt["industry"] == "platform_services").mean() > 2 * (city["industry"] == "platform_services").mean()
    with pytest.raises(ValueError, match="unknown variant 'mars'"):
        generate(GeneratorConfig(rows=10, variant="mars"))


def test_missing_rate_blanks_cells_without_touching_ids_or_tiers():
    frame = generate(GeneratorConfig(rows=5_000, seed=2, missing_rate=0.1))
    blank = frame.drop(columns=["enterprise_id", "tier"]).isna().mean().mean()
    assert 0.08 < blank < 0.12
    assert frame["enterprise_id"].notna().all() and frame["tier"].notna().all()


def test_write_population_puts_the_oracle_beside_the_file(tmp_path):
    out, sidecar = write_population(GeneratorConfig(rows=300, seed=5, variant="alt"), tmp_path / "alt.csv")
    written, oracle = pd.read_csv(out), pd.read_parquet(sidecar)
    assert len(written) == len(oracle) == 300
    assert list(oracle.columns) == ["enterprise_id"] + [f"p_tier_{t}" for t in range(1, 6)]
    np.testing.assert_allclose(oracle.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-9)
