"""The one onnxruntime session factory: every option explicit, none read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    return max(1, len(os.sched_getaffinity(0)))


@dataclass(frozen=True)
class SessionOptions:
    threads: int | None = None  # intra-op threads; None: usable_cores()
    spinning: bool = False  # idle intra-op threads busy-wait (onnxruntime's own default is True)

    def to_ort(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads or usable_cores()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Memory patterns are planned per input shape; with batches of every size from 1 to 32 they
        # pile up: the photo model's process grew to 1.55 GB with them, 0.82 GB without, at the same
        # speed (benchmarks/README.md).
        options.enable_mem_pattern = False
        # Served, spinning idle threads steal the 2 cores from the API process (decoding, review store):
        # p50 at 1 client 89 -> 48 ms, 32 clients 15 -> 21 photos/s with it off (benchmarks/README.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spinning else "0")
        return options


def create_session(model: Path | str | bytes, *, options: SessionOptions = SessionOptions()) -> ort.InferenceSession:
    """A CPU session of a model file, or of a serialized model held in memory."""
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options.to_ort(), providers=["CPUExecutionProvider"])
