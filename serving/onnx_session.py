"""onnxruntime sessions with explicit thread settings, created once per worker."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort


def session_threads() -> int:
    """Intra-op threads per session: `ANKANG_ORT_THREADS`, else the cores this process may use."""
    configured = os.environ.get("ANKANG_ORT_THREADS")
    if configured:
        return max(1, int(configured))
    return max(1, len(os.sched_getaffinity(0)))


def spinning_setting() -> str:
    """`ANKANG_ORT_SPINNING`: "0" (default) idle intra-op threads sleep, "1" they spin (onnxruntime's default)."""
    value = os.environ.get("ANKANG_ORT_SPINNING", "0").strip()
    if value not in ("0", "1"):
        raise ValueError(f"ANKANG_ORT_SPINNING must be 0 or 1, not {value!r}")
    return value


def create_session(model_path: Path, *, intra_op_threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads or session_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Memory patterns are planned per input shape; with batches of every size from 1 to 32 they
    # pile up: the photo model's process grew to 1.55 GB with them, 0.82 GB without, at the same
    # speed (benchmarks/README.md).
    options.enable_mem_pattern = False
    # onnxruntime's idle intra-op threads busy-wait by default; served, that spinning steals the
    # 2 cores from the API process (decoding, review store): p50 at 1 client 89 -> 48 ms, 32 clients
    # 15 -> 21 photos/s with it off (benchmarks/README.md). `ANKANG_ORT_SPINNING=1` turns it back on.
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning_setting())
    return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
