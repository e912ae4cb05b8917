"""Risk model: in-process (serving.risk on onnxruntime) against LightGBM's native predict, and over HTTP.

    .venv/bin/python benchmarks/risk_http.py                 # in-process + HTTP (starts `bentoml serve`)
    .venv/bin/python benchmarks/risk_http.py --no-http       # in-process rows only

In-process, at batch 1, 1,000 and 100,000 enterprises: the service's whole scoring path
(`RiskScorer.score_frame`: validation, the served engine, cost decision, policy floors), the onnxruntime run
alone with and without reasons, and the same LightGBM pipeline (training.risk, the released card's training config,
refitted on the same generated population) through scikit-learn `predict_proba` on prepared
features. Over HTTP: `POST /v1/enterprises/score` with 1 and 1,000 enterprises (p50/p99, one
client), and a 100,000-row CSV and Parquet through `POST /v1/enterprises/score-file`.
"""

from __future__ import annotations

import argparse
import functools
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Measurement, loadavg, percentile, save_results, served, timed_rate  # noqa: E402
from runtime.paths import MODELS_DIR  # noqa: E402

BATCHES = (1, 1_000, 100_000)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per configuration (median reported)")
    parser.add_argument("--single-requests", type=int, default=200, help="requests timed for one enterprise")
    parser.add_argument("--http", action=argparse.BooleanOptionalAction, default=True, help="also measure over HTTP")
    parser.add_argument(
        "--native",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also refit the LightGBM pipeline and time its native predict",
    )
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime and LightGBM threads")
    parser.add_argument("--name", default="risk_http", help="results file name in benchmarks/results/")
    return parser


def population(rows: int, *, seed: int):
    from training.risk.config import GeneratorConfig
    from training.risk.generator import generate

    return generate(GeneratorConfig(rows=rows, seed=seed)).drop(columns=["tier"])


def batched(frame, batch: int, *, limit: int):
    rows = min(len(frame), max(batch, limit))
    return [frame.iloc[start : start + batch] for start in range(0, rows, batch)]


def rate_of(call, chunks, *, repeats: int, name: str, batch: int) -> Measurement:
    def work() -> int:
        for chunk in chunks:
            call(chunk)
        return sum(len(chunk) for chunk in chunks)

    return timed_rate(work, repeats=repeats, name=name, unit="enterprises/s", batch=batch)


def inprocess_rows(frame, args) -> list[Measurement]:
    from serving.risk import RiskScorer
    from training.risk.pipeline import feature_frame

    scorer = RiskScorer.load(MODELS_DIR / "labor_risk", threads=args.threads)
    rows = []
    for batch in BATCHES:
        chunks = batched(frame, batch, limit=200 if batch == 1 else 20_000)
        rows.append(
            rate_of(
                lambda c: scorer.score_frame(c, text_cells=False),
                chunks,
                repeats=args.repeats,
                batch=batch,
                name=f"serving.risk score_frame (validate + onnxruntime + decision + floors + reasons), batch {batch}",
            )
        )
        validated = [scorer.score_frame(c, text_cells=False).batch for c in chunks]
        for reasons in (True, False):
            rows.append(
                rate_of(
                    functools.partial(_onnxruntime_run, scorer, reasons=reasons),
                    validated,
                    repeats=args.repeats,
                    batch=batch,
                    name=f"onnxruntime run only ({'with' if reasons else 'no'} reasons), batch {batch}",
                )
            )
    if args.native:
        rows += native_rows(frame, scorer.schema, args, feature_frame=feature_frame)
    return rows


def _onnxruntime_run(scorer, batch, *, reasons: bool):
    """The released graph on onnxruntime, whichever engine the scorer serves with (benchmarks/risk_engines.py)."""
    return scorer._run_onnx(batch.numeric, batch.categorical, reasons=reasons)


def native_rows(frame, schema, args, *, feature_frame) -> list[Measurement]:
    """The same pipeline in scikit-learn + LightGBM, refitted with the released card's config."""
    import json

    from training.risk.config import GeneratorConfig, RiskModelConfig
    from training.risk.generator import generate
    from training.risk.pipeline import build_pipeline

    card = json.loads((MODELS_DIR / "labor_risk" / "card.json").read_text())
    known = set(RiskModelConfig.__dataclass_fields__)
    config = RiskModelConfig(**{k: v for k, v in card["training_config"].items() if k in known and k != "out"})
    config.n_jobs = args.threads
    train = generate(GeneratorConfig(rows=80_000))
    pipeline = build_pipeline(schema, config).fit(feature_frame(schema, train.drop(columns=["tier"])), train["tier"])
    rows = []
    for batch in BATCHES:
        chunks = [feature_frame(schema, c) for c in batched(frame, batch, limit=200 if batch == 1 else 20_000)]
        rows.append(
            rate_of(
                pipeline.predict_proba,
                chunks,
                repeats=args.repeats,
                batch=batch,
                name=f"LightGBM {__import__('lightgbm').__version__} native (sklearn pipeline "
                f"predict_proba on prepared features), batch {batch}",
            )
        )
    return rows


def json_latency_rows(server, frame, args) -> list[Measurement]:
    import httpx

    rows = []
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=120) as http:
        for batch, requests in ((1, args.single_requests), (1_000, 30)):
            bodies = [
                {"enterprises": frame.iloc[i * batch : (i + 1) * batch].to_dict("records")} for i in range(requests)
            ]
            for body in bodies[:5]:
                http.post("/v1/enterprises/score", json=body).raise_for_status()
            latencies = []
            for body in bodies:
                start = time.perf_counter()
                http.post("/v1/enterprises/score", json=body).raise_for_status()
                latencies.append(time.perf_counter() - start)
            p50, p99 = 1000 * percentile(latencies, 50), 1000 * percentile(latencies, 99)
            rows.append(
                Measurement(
                    name=f"HTTP /v1/enterprises/score, {batch} per request, one client",
                    unit="ms p50",
                    runs=[p50],
                    extra={
                        "batch": batch,
                        "p50_ms": round(p50, 2),
                        "p99_ms": round(p99, 2),
                        "enterprises_per_s": round(batch * len(latencies) / sum(latencies), 1),
                    },
                )
            )
            print(f"  JSON batch {batch}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    return rows


def file_rows(server, frame, args) -> list[Measurement]:
    import httpx

    files = {"CSV": ("enterprises.csv", frame.to_csv(index=False).encode(), "text/csv")}
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    files["Parquet"] = ("enterprises.parquet", parquet.getvalue(), "application/vnd.apache.parquet")
    rows = []
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=300) as http:
        for kind, upload in files.items():
            seconds = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                response = http.post("/v1/enterprises/score-file", files={"file": upload})
                response.raise_for_status()
                seconds.append(time.perf_counter() - start)
            lines = response.content.count(b"\n")
            rows.append(
                Measurement(
                    name=f"HTTP /v1/enterprises/score-file, {len(frame):,}-row {kind} "
                    f"({len(upload[1]) / 2**20:.1f} MB) -> CSV",
                    unit="s",
                    runs=seconds,
                    extra={"rows": len(frame), "csv_lines_back": lines},
                )
            )
            print(f"  {kind} file: {statistics.median(seconds):.2f} s")
    return rows


def main(args: argparse.Namespace) -> int:
    frame = population(100_000, seed=424242)
    rows = inprocess_rows(frame, args)
    if args.http:
        with served() as server:
            rows += json_latency_rows(server, frame, args) + file_rows(server, frame, args)
            rows.append(
                Measurement(
                    name="service resident memory after the risk load",
                    unit="MB",
                    runs=[server.resident_mb()],
                    load=loadavg(),
                )
            )
    save_results(args.name, rows, notes={"population": "training.risk.generator, 100,000 rows, seed 424242"})
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
