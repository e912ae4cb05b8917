"""Risk trees on four engines, side by side: onnxruntime (the released graph), Treelite compiled by
TL2cgen + gcc and Treelite's interpreter (GTIL), lleaves (LLVM-compiled LightGBM), LightGBM itself.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/risk_engines.py            # ~3 minutes on 2 busy cores
    .venv/bin/python benchmarks/risk_engines.py --repeats 5 --name risk_engines_quiet

Same trees everywhere. onnxruntime runs models/labor_risk/model.onnx as served (its preprocessing
inside the graph). Treelite's model is built from that file's trees (runtime/risk/engines.py, the
served "compiled" engine) with each leaf's whole vector: the 4 cumulative logits and the 31 Saabas
contributions, so scores and reasons come out of one walk. lleaves and LightGBM need LightGBM
boosters: the four models are refitted the way `ankang train risk` fits them (the card's training
config, its generated population and holdout split) and their logits are checked against the ONNX
graph's before anything is timed. Every engine but onnxruntime gets the graph's own encoding
(imputation + one-hot, `GraphPlan.encode`, checked against the refitted pipeline's transform), and
its time includes that encoding and the tail (sigmoid, rearrangement, differences), so each row is
validated columns in, tier probabilities (+ contributions) out, like onnxruntime's run.

Reasons: the product's are Saabas contributions summed over the four models (card.reasons.method
saabas_leaf_vectors). lleaves and LightGBM's predict return one value per tree and model, so they
have no reasons in the same walk; LightGBM's `pred_contrib` (TreeSHAP, another method, four more
walks) is timed as the library's own way to explain, its agreement given against its own logits.
Also timed: the service path `RiskModel.score_frame` (validation, trees, decision, floors) on
onnxruntime and on the compiled engine, and each engine's load (session, compile).
Engines are interleaved within each repeat, so a load spike from the machine's other work hits all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Measurement, loadavg, save_results  # noqa: E402
from runtime.paths import MODELS_DIR  # noqa: E402

BATCHES = (1, 1_000, 100_000)
ROWS_TIMED = {1: 200, 1_000: 20_000, 100_000: 100_000}  # rows per timed run at each batch size


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="threads of every engine")
    parser.add_argument("--seed", type=int, default=11, help="seed of the scored population")
    parser.add_argument("--name", default=f"risk_engines_{dt.date.today():%Y%m%d}", help="results file name")
    return parser


def refitted_boosters(model_dir: Path, schema):
    """The four cumulative LightGBM models, fitted as `ankang train risk` fitted the released model."""
    import json

    from training.risk.config import GeneratorConfig, RiskModelConfig
    from training.risk.data import generated_data, split_holdout
    from training.risk.pipeline import build_pipeline, feature_frame

    card = json.loads((model_dir / "card.json").read_text(encoding="utf-8"))
    known = set(RiskModelConfig.__dataclass_fields__)
    config = RiskModelConfig(**{k: v for k, v in card["training_config"].items() if k in known and k != "out"})
    source = {k: v for k, v in card["data"]["source"].items() if k != "kind"}
    labeled = generated_data(GeneratorConfig(**source))
    train, _ = split_holdout(labeled, fraction=0.2, seed=config.seed)
    features = feature_frame(schema, train.frame.drop(columns=[schema.target]), text_cells=labeled.text_cells)
    pipeline = build_pipeline(schema, config).fit(features, train.frame[schema.target].to_numpy())
    return pipeline, [estimator.booster_ for estimator in pipeline.named_steps["model"].estimators_]


def lleaves_models(boosters, *, workdir: Path):
    import lleaves

    models = []
    for index, booster in enumerate(boosters):
        path = workdir / f"model_{index}.txt"
        booster.save_model(str(path))
        model = lleaves.Model(model_file=str(path))
        model.compile(raw_score=True)
        models.append(model)
    return models


class Engines:
    """Every engine as `name -> call(numeric, categorical) -> (probabilities, contributions | None)`."""

    def __init__(self, args, batch, schema, model_dir: Path):
        import tl2cgen
        import treelite

        from runtime.risk import engines
        from runtime.risk.scoring import RiskModel
        from runtime.session import SessionOptions

        self.loads: dict[str, float] = {}
        options = SessionOptions(threads=args.threads)
        self.ort = self._timed_load("onnxruntime session", lambda: RiskModel.load(model_dir, options=options))
        self.compiled = self._timed_load(
            "compiled engine's load (read model.onnx, the cached library or a compile, the parity check)",
            lambda: RiskModel.load(model_dir, options=options, engine="compiled"),
        )
        plan = self.compiled.compiled.plan
        self.plan = plan
        scores_only = engines.treelite_model(plan.trees, n_encoded=plan.n_encoded, targets=plan.n_models)
        full = engines.treelite_model(plan.trees, n_encoded=plan.n_encoded)
        with tempfile.TemporaryDirectory() as workdir:
            self._timed_load(
                "tl2cgen + gcc compile of the 35-target trees (scores + reasons), not cached",
                lambda: engines.compile_library(full, threads=args.threads, workdir=Path(workdir), toolchain="gcc"),
            )
        with tempfile.TemporaryDirectory() as workdir:
            self.scores_predictor = self._timed_load(
                "tl2cgen + gcc compile of the 4-target trees (scores only)",
                lambda: engines.Library(
                    engines.compile_library(scores_only, threads=args.threads, workdir=Path(workdir), toolchain="gcc"),
                    threads=args.threads,
                ),
            )
        pipeline, boosters = self._timed_load(
            "LightGBM refit of the four models (training's code)", lambda: refitted_boosters(model_dir, schema)
        )
        self.boosters = boosters
        self.encoding_check = _encoding_check(plan, pipeline, batch, schema)
        with tempfile.TemporaryDirectory() as workdir:
            self.lleaves = self._timed_load(
                "lleaves compile of the four models", lambda: lleaves_models(boosters, workdir=Path(workdir))
            )
        self.threads = args.threads
        self.full = full
        self.tl2cgen = tl2cgen
        self.treelite = treelite
        self.tail = engines.probabilities_from_logits

    def _timed_load(self, name: str, load):
        start = time.perf_counter()
        value = load()
        self.loads[name] = round(time.perf_counter() - start, 2)
        return value

    def calls(self) -> dict[str, dict]:
        """{name: {"call": ..., "reasons": what the reasons are, "scores_only": bool}}."""
        plan, tail, threads = self.plan, self.tail, self.threads

        def ort(reasons):
            def call(n, c):
                probabilities, contributions = self.ort._run_onnx(n, c, reasons=reasons)
                return probabilities, contributions if reasons else None

            return call

        def compiled(reasons):
            return lambda n, c: self.compiled.compiled.run(n, c, reasons=reasons)

        def compiled_scores(n, c):
            return tail(self.scores_predictor.predict(plan.encode(n, c))).astype(float), None

        def gtil(n, c):
            out = self.treelite.gtil.predict(self.full, plan.encode(n, c), nthread=threads, pred_margin=True)[:, :, 0]
            return tail(out[:, : plan.n_models]).astype(float), out[:, plan.n_models :]

        def lleaves(n, c):
            encoded = plan.encode(n, c).astype(np.float64)
            logits = np.column_stack([model.predict(encoded, n_jobs=threads) for model in self.lleaves])
            return tail(logits).astype(float), None

        def lightgbm(n, c):
            encoded = plan.encode(n, c)
            logits = np.column_stack([b.predict(encoded, raw_score=True, num_threads=threads) for b in self.boosters])
            return tail(logits).astype(float), None

        def lightgbm_contrib(n, c):
            encoded = plan.encode(n, c)
            shap = [b.predict(encoded, pred_contrib=True, num_threads=threads) for b in self.boosters]
            logits = np.column_stack([values.sum(axis=1) for values in shap])
            return tail(logits).astype(float), sum(shap)  # TreeSHAP per encoded column + bias, summed over models

        return {
            "onnxruntime, released graph, scores only (with_reasons=false)": dict(call=ort(False), reasons=False),
            "onnxruntime, released graph, scores + Saabas reasons, one walk": dict(call=ort(True), reasons=True),
            "treelite → tl2cgen + gcc, 4-target trees, scores only": dict(call=compiled_scores, reasons=False),
            "treelite → tl2cgen + gcc, 35-target trees, scores + Saabas reasons, one walk (served)": dict(
                call=compiled(True), reasons=True
            ),
            "treelite GTIL (interpreter), 35-target trees, scores + Saabas reasons, one walk": dict(
                call=gtil, reasons=True, max_rows=20_000
            ),
            "lleaves 1.3 (LLVM), four LightGBM models, scores only (no leaf vectors: no reasons)": dict(
                call=lleaves, reasons=False
            ),
            "LightGBM predict raw_score, four models, scores only": dict(call=lightgbm, reasons=False),
            "LightGBM pred_contrib, four models, scores + TreeSHAP (not the product's reasons)": dict(
                call=lightgbm_contrib, reasons=False, max_rows=20_000
            ),
        }


def _encoding_check(plan, pipeline, batch, schema) -> float:
    """GraphPlan.encode against the refitted pipeline's own ColumnTransformer on 2,000 rows: max |diff|."""
    import pandas as pd

    rows = slice(0, 2_000)
    numeric = {name: values[rows] for name, values in batch.numeric.items()}
    categorical = {name: values[rows] for name, values in batch.categorical.items()}
    frame = pd.DataFrame({name: numeric[name] if name in numeric else categorical[name] for name in schema.features})
    reference = pipeline.named_steps["prep"].transform(frame)
    return float(np.abs(plan.encode(numeric, categorical) - reference).max())


def chunks_of(batch, size: int, rows: int) -> list[tuple[dict, dict]]:
    out = []
    for start in range(0, rows, size):
        part = slice(start, start + size)
        out.append(
            (
                {name: values[part] for name, values in batch.numeric.items()},
                {name: values[part] for name, values in batch.categorical.items()},
            )
        )
    return out


def agreement(engines: Engines, calls: dict, batch) -> dict[str, dict]:
    """Each engine's max |diff| against onnxruntime with reasons, on the first 20,000 rows."""
    numeric, categorical = chunks_of(batch, 20_000, 20_000)[0]
    anchor = engines.ort._run_onnx(numeric, categorical, reasons=True)
    out = {}
    for name, spec in calls.items():
        probabilities, contributions = spec["call"](numeric, categorical)
        row = {"probabilities_max_abs_diff": float(np.abs(probabilities - anchor[0]).max())}
        if spec["reasons"]:
            row["contributions_max_abs_diff"] = float(np.abs(contributions.astype(float) - anchor[1]).max())
        elif contributions is not None:  # TreeSHAP, per encoded column + bias: another method, compared
            row |= _treeshap_vs_saabas(engines, contributions, anchor[1])
        out[name] = row
    return out


def _treeshap_vs_saabas(engines: Engines, shap: np.ndarray, saabas: np.ndarray) -> dict[str, float]:
    """Both explain the same summed logit: their totals (with biases) agree; per feature they differ."""
    plan, features = engines.plan, engines.ort.schema.features
    owners = [features.index(name) for name in plan.numeric]
    owners += [features.index(name) for name, categories in plan.blocks for _ in categories]
    per_feature = np.zeros_like(saabas, dtype=float)
    np.add.at(per_feature.T, owners, shap[:, :-1].T)
    bias = engines.ort.model.card["reasons"]["bias"]
    return {
        "sum_with_bias_max_abs_diff": float(np.abs(shap.sum(axis=1) - (saabas.sum(axis=1) + bias)).max()),
        "per_feature_max_abs_diff": float(np.abs(per_feature - saabas).max()),
        "rows_with_another_top_reason": float(np.mean(per_feature.argmax(axis=1) != saabas.argmax(axis=1))),
    }


def timed(engines: Engines, calls: dict, batch, *, repeats: int, threads: int) -> list[Measurement]:
    service = {
        "service path score_frame with reasons (validate + trees + decision + floors), onnxruntime": engines.ort,
        "service path score_frame with reasons (validate + trees + decision + floors), compiled (served)": (
            engines.compiled
        ),
    }
    measurements = []
    for size in BATCHES:
        runs: dict[str, list[float]] = {name: [] for name in [*calls, *service]}
        loads = []
        for repeat in range(repeats + 1):  # the first round warms up
            for name, spec in calls.items():
                rows = min(ROWS_TIMED[size], spec.get("max_rows", ROWS_TIMED[size]))
                if size > rows:
                    continue
                parts = chunks_of(batch, size, rows)
                start = time.perf_counter()
                for numeric, categorical in parts:
                    spec["call"](numeric, categorical)
                if repeat:
                    runs[name].append(rows / (time.perf_counter() - start))
            for name, model in service.items():
                frames = [engines.frame.iloc[i : i + size] for i in range(0, ROWS_TIMED[size], size)]
                start = time.perf_counter()
                for frame in frames:
                    model.score_frame(frame, text_cells=False)
                if repeat:
                    runs[name].append(ROWS_TIMED[size] / (time.perf_counter() - start))
            loads.append(loadavg())
        for name, values in runs.items():
            if values:
                measurements.append(
                    Measurement(
                        name=f"{name}, batch {size}",
                        unit="rows/s",
                        runs=values,
                        extra={"batch": size, "threads": threads},
                        load=loads[-1],
                    )
                )
        print(f"batch {size} done, load {loadavg()}", flush=True)
    return measurements


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    from runtime.risk.schema import RiskSchema
    from runtime.risk.validate import validate_frame
    from training.risk.config import GeneratorConfig
    from training.risk.generator import generate

    model_dir = MODELS_DIR / "labor_risk"
    frame = generate(GeneratorConfig(rows=100_000, seed=args.seed, missing_rate=0.02)).drop(columns=["tier"])
    import json

    schema = RiskSchema.from_dict(json.loads((model_dir / "card.json").read_text(encoding="utf-8"))["schema"])
    batch = validate_frame(schema, frame, text_cells=False)
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    engines = Engines(args, batch, schema, model_dir)
    engines.frame = frame
    calls = engines.calls()
    agree = agreement(engines, calls, batch)
    refit = engines.boosters
    numeric, categorical = chunks_of(batch, 20_000, 20_000)[0]
    encoded = engines.plan.encode(numeric, categorical)
    refit_logits = np.column_stack([b.predict(encoded, raw_score=True) for b in refit])
    onnx_probabilities = engines.ort._run_onnx(numeric, categorical, reasons=False)[0]
    refit_vs_onnx = float(np.abs(engines.tail(refit_logits) - onnx_probabilities).max())
    measurements = timed(engines, calls, batch, repeats=args.repeats, threads=args.threads)
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    notes = {
        "population": f"generated, 100,000 rows, seed {args.seed}, 2 % blank cells; rows timed per run: "
        f"{ROWS_TIMED} (GTIL and pred_contrib at most 20,000)",
        "uptime_before": uptime_before,
        "uptime_after": uptime_after,
        "load": "the machine's 2 cores were shared with a photo training run and other sessions' tests",
        "trees": f"{engines.plan.trees.n_trees} trees, {engines.plan.n_models} logit targets + "
        f"{engines.plan.n_contributions} contribution targets, {engines.plan.n_encoded} encoded columns",
        "refit_vs_onnx_probabilities_max_abs_diff": refit_vs_onnx,
        "graph_encoding_vs_pipeline_transform_max_abs_diff": engines.encoding_check,
        "agreement_with_onnxruntime_on_20000_rows": agree,
        "load_seconds": engines.loads,
        "versions": _versions(),
    }
    save_results(args.name, measurements, notes=notes)
    print(json.dumps({k: v for k, v in notes.items() if k != "versions"}, indent=1, ensure_ascii=False))


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("onnxruntime", "treelite", "tl2cgen", "lleaves", "llvmlite", "lightgbm")}


if __name__ == "__main__":
    main()
