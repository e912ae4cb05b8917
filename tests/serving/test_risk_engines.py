"""The compiled risk engine (runtime/risk/engines.py) against onnxruntime: same answers, refusals, fallback, swaps.

Tolerance of "the same answer" (docs/risk-engines.md): tiers, rules fired and imputed fields equal;
probabilities within 1e-6 and contributions within 5e-5 before rounding, so an answer's rounded
probability (4 places) or contribution (3 places) may differ by one unit in its last place, and two
reasons may swap places only where their contributions tie within that tolerance.
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from runtime.modeldir import ModelDir
from runtime.paths import MODELS_DIR
from runtime.risk import engines
from runtime.risk.engines import EngineUnavailable, GraphPlan, check_against, read_plan
from serving.reload import HotSwap
from serving.risk import RiskScorer
from training.risk.config import GeneratorConfig, RiskModelConfig
from training.risk.generator import generate

MODEL_DIR = MODELS_DIR / "labor_risk"
pytestmark = pytest.mark.skipif(
    engines.compiler() is None, reason="no C compiler (gcc or cc) on PATH: the compiled engine cannot be built here"
)
PROBABILITY_TOLERANCE = 1e-6
CONTRIBUTION_TOLERANCE = 5e-5


@pytest.fixture(scope="module")
def scorers() -> tuple[RiskScorer, RiskScorer]:
    return (
        RiskScorer.load(MODEL_DIR, threads=1, engine="onnxruntime"),
        RiskScorer.load(MODEL_DIR, threads=1, engine="compiled"),
    )


@pytest.fixture(scope="module")
def population():
    """The released model's held-out population (another seed than its training data), 2 % blank cells."""
    return generate(GeneratorConfig(rows=4_000, seed=4242, missing_rate=0.02)).drop(columns=["tier"])


@pytest.fixture(scope="module")
def toy_model_dir(tmp_path_factory):
    """A small model as `ankang train risk` writes it (its own trees, another sha256)."""
    from training.risk.train import train_risk

    out = tmp_path_factory.mktemp("toy") / "labor_risk"
    config = RiskModelConfig(out=out, n_estimators=6, n_jobs=1)
    train_risk(config, generator=GeneratorConfig(rows=2_000, seed=5))
    return out


def test_the_served_default_is_the_compiled_engine(scorers):
    assert (scorers[0].engine, scorers[1].engine) == ("onnxruntime", "compiled")
    assert RiskScorer.load(MODEL_DIR, threads=1).engine == "compiled"  # auto, with gcc on this machine


def test_compiled_scores_and_reasons_equal_onnxruntimes_on_the_held_out_population(scorers, population):
    onnx, compiled = (scorer.score_frame(population, text_cells=False) for scorer in scorers)
    assert np.abs(onnx.probabilities - compiled.probabilities).max() <= PROBABILITY_TOLERANCE
    assert np.abs(onnx.contributions - compiled.contributions).max() <= CONTRIBUTION_TOLERANCE
    assert onnx.contributions.shape == compiled.contributions.shape == (len(population), 31)
    assert (onnx.tier == compiled.tier).all() and (onnx.model_tier == compiled.model_tier).all()
    assert (onnx.fired == compiled.fired).all()
    for old, new in zip(scorers[0].results(onnx), scorers[1].results(compiled)):
        assert_same_answer(old, new)


def assert_same_answer(old: dict, new: dict) -> None:
    """Equal up to the stated tolerance (this module's docstring)."""
    for key in ("enterprise_id", "tier", "model_tier", "rules_fired", "imputed"):
        assert old[key] == new[key]
    assert old["probabilities"].keys() == new["probabilities"].keys()
    for tier, p in old["probabilities"].items():
        assert abs(p - new["probabilities"][tier]) <= 1e-4 + 1e-12
    old_fields, new_fields = [r["field"] for r in old["reasons"]], [r["field"] for r in new["reasons"]]
    if old_fields != new_fields:  # only where the contributions involved tie within the tolerance
        values = {reason["field"]: reason["contribution"] for reason in old["reasons"] + new["reasons"]}
        differing = (set(old_fields) ^ set(new_fields)) | {a for a, b in zip(old_fields, new_fields) if a != b}
        low, high = min(values[field] for field in differing), max(values[field] for field in differing)
        assert high - low <= 0.001 + 2 * CONTRIBUTION_TOLERANCE or low <= 0.001  # a tie, or one at the c > 0 edge
    for reason in new["reasons"]:
        match = [r for r in old["reasons"] if r["field"] == reason["field"]]
        if match:
            assert match[0]["value"] == reason["value"]
            assert abs(match[0]["contribution"] - reason["contribution"]) <= 0.001 + 1e-9


def test_score_files_without_reasons_match_too(scorers, population):
    csv = population.head(500).to_csv(index=False).encode()
    tables = [scorer.score_table(csv, filename="e.csv", reasons=False) for scorer in scorers]
    old, new = (table.decode().splitlines() for table in tables)
    assert [line.split(",")[:3] for line in old] == [line.split(",")[:3] for line in new]  # ids, tiers
    scores = scorers[1].score_frame(population.head(10), text_cells=False, reasons=False)
    assert scores.contributions.shape == (0, 31)


def test_the_graph_plan_reads_the_exporters_layout(scorers):
    plan: GraphPlan = read_plan(MODEL_DIR / "model.onnx")
    schema = scorers[0].schema
    assert set(plan.numeric) == set(schema.numeric_features)
    assert [name for name, _ in plan.blocks] == schema.categorical_features
    assert [categories for _, categories in plan.blocks] == [
        tuple(schema.fields[name].categories) for name in schema.categorical_features
    ]
    assert (plan.n_models, plan.n_contributions, plan.n_encoded, plan.trees.n_trees) == (4, 31, 58, 240)
    card = json.loads((MODEL_DIR / "card.json").read_text(encoding="utf-8"))
    blank = plan.encode(
        {name: np.array([np.nan]) for name in plan.numeric}, {name: np.array([""]) for name, _ in plan.blocks}
    )[0]
    assert (blank[: len(plan.numeric)] == plan.imputed).all()
    assert blank[len(plan.numeric) :].sum() == len(plan.blocks)  # each blank category takes its fill value
    assert card["reasons"]["method"] == "saabas_leaf_vectors"


def test_auto_falls_back_to_onnxruntime_without_a_compiler_and_compiled_refuses(monkeypatch, caplog):
    monkeypatch.setattr(engines, "compiler", lambda: None)
    with caplog.at_level(logging.WARNING, logger="runtime.risk.scoring"):
        scorer = RiskScorer.load(MODEL_DIR, threads=1)
    assert scorer.engine == "onnxruntime" and scorer.compiled is None
    assert "scores on onnxruntime: no C compiler (gcc or cc) on PATH" in caplog.text
    with pytest.raises(EngineUnavailable, match=r"^no C compiler \(gcc or cc\) on PATH$"):
        RiskScorer.load(MODEL_DIR, threads=1, engine="compiled")


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be one of auto, compiled, onnxruntime, got 'fast'"):
        RiskScorer.load(MODEL_DIR, threads=1, engine="fast")


def test_compiled_trees_that_disagree_with_onnxruntime_are_refused(scorers):
    onnx, compiled = scorers

    def off_by_a_little(numeric, categorical):
        probabilities, contributions = onnx._run_onnx(numeric, categorical, reasons=True)
        contributions = contributions.copy()
        contributions[3, 5] += 3e-4
        return probabilities, contributions

    with pytest.raises(EngineUnavailable, match=r"contributions 3\.0\de-04"):
        check_against(compiled.compiled, off_by_a_little)
    assert check_against(compiled.compiled, lambda n, c: onnx._run_onnx(n, c, reasons=True))["contributions"] < 1e-4


def test_a_freshly_trained_model_compiles_and_a_hot_swap_serves_its_trees(tmp_path, toy_model_dir, population):
    served = tmp_path / "labor_risk"
    shutil.copytree(MODEL_DIR, served)
    swap = HotSwap(served, lambda path: RiskScorer.load(path, threads=1, engine="compiled"))
    before = swap.current
    for name in ("model.onnx", "card.json"):  # as `ankang promote` replaces them
        shutil.copy(toy_model_dir / name, served / f".{name}.new")
        (served / f".{name}.new").replace(served / name)
    assert swap.reload_if_changed()
    after = swap.current
    assert after.compiled.library is not before.compiled.library
    assert after.compiled.plan.trees.n_trees < before.compiled.plan.trees.n_trees
    reference = RiskScorer.load(served, threads=1, engine="onnxruntime")
    frame = population.head(1_000)
    new, old = after.score_frame(frame, text_cells=False), reference.score_frame(frame, text_cells=False)
    assert np.abs(new.probabilities - old.probabilities).max() <= PROBABILITY_TOLERANCE
    assert np.abs(new.contributions - old.contributions).max() <= CONTRIBUTION_TOLERANCE
    assert (new.tier == old.tier).all()
    assert before.score_frame(frame, text_cells=False).probabilities.shape == (1_000, 5)  # the old one still runs
    assert ModelDir.load(served).card["sha256"] != ModelDir.load(MODEL_DIR).card["sha256"]


def test_a_second_process_loads_the_cached_library_instead_of_compiling(monkeypatch, scorers):
    monkeypatch.setattr(engines, "_compiled", {})  # as a fresh process: nothing loaded yet

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(engines, "compile_library", no_compiler)
    scorer = RiskScorer.load(MODEL_DIR, threads=1, engine="compiled")
    assert scorer.compiled.library is not scorers[1].compiled.library  # loaded anew, from the cache
    sha256 = scorer.model.card["sha256"]
    assert [path.name for path in engines.cache_dir().glob(f"{sha256[:32]}-*.so")]


def test_a_cache_folder_others_may_write_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(engines.tempfile, "gettempdir", lambda: str(tmp_path))
    folder = engines.cache_dir()
    assert folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o777)
    with pytest.raises(EngineUnavailable, match=r"is not a folder only this user may write; not loading code from it"):
        engines.cache_dir()


def test_a_graph_the_reader_does_not_know_falls_back_under_auto(monkeypatch, caplog):
    def unknown_layout(path):
        raise ValueError("expected one Imputer node in the risk graph, found 0")

    monkeypatch.setattr(engines, "read_plan", unknown_layout)
    with caplog.at_level(logging.WARNING, logger="runtime.risk.scoring"):
        assert RiskScorer.load(MODEL_DIR, threads=1).engine == "onnxruntime"
    assert "the trees could not be compiled: ValueError: expected one Imputer node in the risk graph" in caplog.text
    with pytest.raises(EngineUnavailable, match="the trees could not be compiled: ValueError: expected one Imputer"):
        RiskScorer.load(MODEL_DIR, threads=1, engine="compiled")
