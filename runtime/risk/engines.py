"""The risk model's trees compiled to machine code at model load: scores and reasons in one tree walk.

The released model.onnx holds the preprocessing (median / most-frequent imputation, one-hot) and one
`TreeEnsembleRegressor` whose leaves carry each cumulative model's logit (targets 0..3) and the
Saabas contribution vector (targets 4..), see training/risk/export.py. onnxruntime walks those
trees as data; here the same trees, read from the same file, become a Treelite model whose leaves
carry the same vectors, TL2cgen writes it out as C and gcc compiles it (`-O2`, plus
`-fno-signed-zeros` so the zero entries of the leaf vectors add nothing). Measured side by side
(benchmarks/risk_engines.py, benchmarks/README.md) this is several times onnxruntime's speed with
reasons; lleaves (LLVM-compiled LightGBM) and Treelite's interpreter cannot carry a leaf vector and
LightGBM's own contributions are TreeSHAP, another method.

Nothing is written next to the model: models/ keeps model.onnx + card.json only. The library is
built in a private cache folder (`cache_dir()`: the temporary directory's `ankang-risk-trees-<uid>`,
mode 0700, refused if another user owns it or can write it), named by the model file's sha256 and
what built it, under a lock: of the API processes that start together one compiles, the others
load its library; a restart or a swap back to a model compiles nothing. This process also keeps the
libraries of its last two model files. `check_against` runs both engines on probe rows built from
the trees' own thresholds and refuses the compiled one unless they agree (PARITY_TOLERANCE).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ENGINES = ("auto", "compiled", "onnxruntime")  # auto: compiled when a C compiler is on PATH
# trees alone, 100,000 rows, 2 threads, load 4.5: -O2 1.07 M rows/s after a 6.8 s compile, -O3 0.87 M after 10 s,
# -O1 0.75 M after 4 s; without -fno-signed-zeros (-O3) 0.21 M
COMPILER_FLAGS = ("-O2", "-fno-signed-zeros")
PARITY_TOLERANCE = 1e-4  # probabilities and contributions, compiled against onnxruntime
PROBE_ROWS = 512
PARALLEL_ROWS = 2_000  # from this many rows a batch runs on every thread: 1 thread won at 1,000, 2 at 3,000
LAYOUT = "leaf-vectors-1"  # how treelite_model lays the trees out; change it with that function

_compiled: dict[str, Library] = {}  # model sha256 -> its loaded library, this process's latest KEPT_LIBRARIES
KEPT_LIBRARIES = 2  # the model served and the one before it (a swap back compiles nothing)
_compiled_lock = threading.Lock()


class EngineUnavailable(RuntimeError):
    """The compiled engine cannot be built here (no compiler, no tl2cgen) or disagrees with onnxruntime."""


def compiler() -> str | None:
    """The C compiler the compiled engine uses (gcc, else cc), or None."""
    return next((name for name in ("gcc", "cc") if shutil.which(name)), None)


@dataclass(frozen=True)
class TreeTable:
    """One TreeEnsembleRegressor's attributes as arrays (nodes in file order, targets as leaf vectors)."""

    tree_ids: np.ndarray
    node_ids: np.ndarray
    features: np.ndarray
    thresholds: np.ndarray  # float32, as onnxruntime compares them
    is_leaf: np.ndarray
    true_ids: np.ndarray
    false_ids: np.ndarray
    leaf_vectors: dict[tuple[int, int], np.ndarray]  # (tree, node) -> [n_targets] float32
    n_targets: int

    @property
    def n_trees(self) -> int:
        return len(np.unique(self.tree_ids))


@dataclass(frozen=True)
class GraphPlan:
    """What the exported graph computes, read from it: the encoding, then the trees.

    Encoded columns: the numeric features in `numeric` order with NaN -> `imputed`, then one one-hot
    block per entry of `blocks` (feature, its categories; "" -> that feature's `fill`, an unknown
    value -> all zeros), as skl2onnx's ColumnTransformer graph lays them out."""

    numeric: tuple[str, ...]
    imputed: np.ndarray
    blocks: tuple[tuple[str, tuple[str, ...]], ...]
    fill: dict[str, str]
    trees: TreeTable
    n_models: int
    n_contributions: int

    @property
    def n_encoded(self) -> int:
        return len(self.numeric) + sum(len(categories) for _, categories in self.blocks)

    def encode(self, numeric: dict[str, np.ndarray], categorical: dict[str, np.ndarray]) -> np.ndarray:
        """[rows, n_encoded] float32 from validated columns (numbers NaN = missing, categories "" = missing)."""
        rows = len(next(iter(numeric.values()))) if numeric else len(next(iter(categorical.values())))
        out = np.empty((rows, self.n_encoded), dtype=np.float32)
        width = len(self.numeric)
        for column, name in enumerate(self.numeric):
            out[:, column] = numeric[name]
        numbers = out[:, :width]
        np.copyto(numbers, self.imputed, where=np.isnan(numbers))
        for (name, categories), codes_of in zip(self.blocks, self._codes):
            # codes 0..k-1 the categories (a blank: the fill value's), -1 an unknown value (all zeros); a dict
            # beat pandas' Index.get_indexer 4x at 100,000 rows and 300x at 1,000
            values = categorical[name]
            codes = np.fromiter((codes_of.get(value, -1) for value in values), dtype=np.intp, count=rows)
            out[:, width : width + len(categories)] = _one_hot(len(categories))[codes]
            width += len(categories)
        return out

    @functools.cached_property
    def _codes(self) -> list[dict[str, int]]:
        return [
            {**{category: code for code, category in enumerate(categories)}, "": categories.index(self.fill[name])}
            for name, categories in self.blocks
        ]


@functools.cache
def _one_hot(k: int) -> np.ndarray:
    """Row c: category c's one-hot row; the last row (code -1, an unknown value): zeros."""
    return np.vstack([np.eye(k, dtype=np.float32), np.zeros((1, k), dtype=np.float32)])


def read_plan(onnx_path: str | Path) -> GraphPlan:
    """Read the encoding and the with-reasons trees from a model.onnx written by training/risk/export.py;
    ValueError names what differs from that layout."""
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    values = {item.name: numpy_helper.to_array(item) for item in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}

    def attrs(node) -> dict:
        return {item.name: helper.get_attribute_value(item) for item in node.attribute}

    def only(op_type: str, nodes=graph.node):
        found = [node for node in nodes if node.op_type == op_type]
        if len(found) != 1:
            raise ValueError(f"expected one {op_type} node in the risk graph, found {len(found)}")
        return found[0]

    def text(value) -> str:
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    imputer = only("Imputer")
    numeric = tuple(producer[imputer.input[0]].input)
    imputed = np.asarray(attrs(imputer)["imputed_value_floats"], dtype=np.float32)
    if len(imputed) != len(numeric):
        raise ValueError("the numeric imputer's values do not match its inputs")

    # categorical: Where(is_missing, fill, column) per feature, concatenated; each one-hot block Gathers one
    fill, ordered = {}, []
    for where in [node for node in graph.node if node.op_type == "Where"]:
        condition, fill_value, column = where.input
        extractor = producer[column]
        source = producer[extractor.input[0]]  # the Concat of the categorical inputs
        name = source.input[int(values[extractor.input[1]].reshape(-1)[0])]
        fill[name] = text(attrs(producer[fill_value])["values_strings"][0])
        ordered.append((where.output[0], name))
    concat_of = {node.output[0]: node for node in graph.node if node.op_type == "Concat"}
    nomiss = {output: name for output, name in ordered}
    blocks = []
    for encoder in [node for node in graph.node if node.op_type == "OneHotEncoder"]:
        gather = producer[encoder.input[0]]
        concat = concat_of[gather.input[0]]
        name = nomiss[concat.input[int(values[gather.input[1]].reshape(-1)[0])]]
        blocks.append((encoder.output[0], name, tuple(text(c) for c in attrs(encoder)["cats_strings"])))
    block_order = list(concat_of[producer[only("Reshape").input[0]].output[0]].input)
    blocks.sort(key=lambda block: block_order.index(block[0]))
    unknown_fill = [name for _, name, categories in blocks if fill.get(name) not in categories]
    if unknown_fill:
        raise ValueError(f"the imputed value of {', '.join(unknown_fill)} is not one of its categories")

    switch = only("If")
    branch = {item.name: item.g for item in switch.attribute}["then_branch"]
    ensemble = attrs(only("TreeEnsembleRegressor", branch.node))
    split = values[only("Split", branch.node).input[1]]
    if attrs(only("TreeEnsembleRegressor", branch.node)).get("aggregate_function", b"SUM") != b"SUM":
        raise ValueError("the tree ensemble does not sum its trees")
    if set(ensemble["nodes_modes"]) - {b"BRANCH_LEQ", b"LEAF"}:
        raise ValueError("the tree ensemble has splits other than BRANCH_LEQ")
    return GraphPlan(
        numeric=numeric,
        imputed=imputed,
        blocks=tuple((name, categories) for _, name, categories in blocks),
        fill=fill,
        trees=_tree_table(ensemble),
        n_models=int(split[0]),
        n_contributions=int(split[1]),
    )


def _tree_table(ensemble: dict) -> TreeTable:
    n_targets = int(ensemble["n_targets"])
    vectors: dict[tuple[int, int], np.ndarray] = {}
    for tree, node, target, weight in zip(
        ensemble["target_treeids"], ensemble["target_nodeids"], ensemble["target_ids"], ensemble["target_weights"]
    ):
        vectors.setdefault((tree, node), np.zeros(n_targets, dtype=np.float32))[target] += weight
    modes = np.asarray(ensemble["nodes_modes"])
    return TreeTable(
        tree_ids=np.asarray(ensemble["nodes_treeids"]),
        node_ids=np.asarray(ensemble["nodes_nodeids"]),
        features=np.asarray(ensemble["nodes_featureids"]),
        thresholds=np.asarray(ensemble["nodes_values"], dtype=np.float32),
        is_leaf=modes == b"LEAF",
        true_ids=np.asarray(ensemble["nodes_truenodeids"]),
        false_ids=np.asarray(ensemble["nodes_falsenodeids"]),
        leaf_vectors=vectors,
        n_targets=n_targets,
    )


def treelite_model(table: TreeTable, *, n_encoded: int, targets: int | None = None):
    """The trees as a Treelite model whose leaves carry the first `targets` entries of their vector."""
    from treelite.model_builder import Metadata, ModelBuilder, PostProcessorFunc, TreeAnnotation

    targets = targets or table.n_targets
    builder = ModelBuilder(
        threshold_type="float32",
        leaf_output_type="float32",
        metadata=Metadata(
            num_feature=n_encoded,
            task_type="kRegressor",
            average_tree_output=False,
            num_target=targets,
            num_class=[1] * targets,
            leaf_vector_shape=(targets, 1),
        ),
        tree_annotation=TreeAnnotation(
            num_tree=table.n_trees, target_id=[-1] * table.n_trees, class_id=[-1] * table.n_trees
        ),
        postprocessor=PostProcessorFunc(name="identity"),
        base_scores=[0.0] * targets,
    )
    zeros = np.zeros(table.n_targets, dtype=np.float32)
    current = None
    for i, tree in enumerate(table.tree_ids.tolist()):
        if tree != current:
            if current is not None:
                builder.end_tree()
            builder.start_tree()
            current = tree
        node = int(table.node_ids[i])
        builder.start_node(node)
        if table.is_leaf[i]:
            builder.leaf(table.leaf_vectors.get((tree, node), zeros)[:targets].tolist())
        else:  # BRANCH_LEQ: x <= threshold goes to the true node; encoded inputs are never NaN
            builder.numerical_test(
                int(table.features[i]),
                float(table.thresholds[i]),
                default_left=True,
                opname="<=",
                left_child_key=int(table.true_ids[i]),
                right_child_key=int(table.false_ids[i]),
            )
        builder.end_node()
    builder.end_tree()
    return builder.commit()


def cache_dir() -> Path:
    """This user's private folder of compiled risk trees (created 0700; refused if not private)."""
    folder = Path(tempfile.gettempdir()) / f"ankang-risk-trees-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise EngineUnavailable(f"{folder} is not a folder only this user may write; not loading code from it")
    return folder


def library_name(sha256: str, toolchain: str) -> str:
    """The model file's sha256 and what turns it into a library: a change of either compiles anew."""
    from importlib.metadata import version

    recipe = "|".join([version("treelite"), version("tl2cgen"), toolchain, *COMPILER_FLAGS, LAYOUT])
    return f"{sha256[:32]}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}.so"


@contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_library(plan: GraphPlan, *, sha256: str, threads: int, toolchain: str) -> Path:
    """The cached library of this model file, compiled first if it is not there."""
    folder = cache_dir()
    library = folder / library_name(sha256, toolchain)
    with _locked(library.with_suffix(".lock")):
        if not library.is_file():
            model = treelite_model(plan.trees, n_encoded=plan.n_encoded)
            with tempfile.TemporaryDirectory(prefix="build-", dir=folder) as workdir:
                compile_library(model, threads=threads, workdir=Path(workdir), toolchain=toolchain).replace(library)
    return library


def compile_library(model, *, threads: int, workdir: Path, toolchain: str) -> Path:
    """TL2cgen C code of a Treelite model, compiled by `toolchain` into workdir; returns the library's path."""
    import tl2cgen

    library = workdir / "risk_trees.so"
    tl2cgen.export_lib(
        model,
        toolchain=toolchain,
        libpath=library,
        params={"parallel_comp": max(1, threads)},
        nthread=max(1, threads),
        options=list(COMPILER_FLAGS),
    )
    return library


def probabilities_from_logits(logits: np.ndarray) -> np.ndarray:
    """The graph's tail: P(tier > k) = sigmoid(logit k), sorted descending per row, then differences."""
    above = (1.0 / (1.0 + np.exp(-logits.astype(np.float32)))).astype(np.float32)
    above = -np.sort(-above, axis=1)
    ones = np.ones((len(above), 1), dtype=np.float32)
    zeros = np.zeros((len(above), 1), dtype=np.float32)
    return np.hstack([ones, above]) - np.hstack([above, zeros])


class Library:
    """A compiled library's predictors: one thread for small batches (a parallel region costs more than
    it saves there), `threads` for large ones. TL2cgen's predict may be called by one thread at a time,
    so each predictor has its lock; a small request does not wait behind a large file."""

    def __init__(self, path: Path, *, threads: int):
        import tl2cgen

        self.path = path
        self.small = tl2cgen.Predictor(path, nthread=1)
        self.large = self.small if threads <= 1 else tl2cgen.Predictor(path, nthread=threads)
        self._locks = {id(self.small): threading.Lock(), id(self.large): threading.Lock()}

    def predict(self, encoded: np.ndarray) -> np.ndarray:
        """[rows, targets] float32 sums of the leaf vectors."""
        import tl2cgen

        predictor = self.small if len(encoded) < PARALLEL_ROWS else self.large
        matrix = tl2cgen.DMatrix(encoded, dtype="float32")
        with self._locks[id(predictor)]:
            return predictor.predict(matrix, pred_margin=True)[:, :, 0]


class CompiledTrees:
    """The compiled engine: validated columns -> (probabilities [N, tiers] float64, contributions [N, F])."""

    def __init__(self, plan: GraphPlan, library: Library):
        self.plan = plan
        self.library = library

    @classmethod
    def build(cls, onnx_path: str | Path, *, sha256: str, threads: int) -> CompiledTrees:
        """Read model.onnx and compile its trees (or reuse this process's or the cache's library of them)."""
        toolchain = compiler()
        if toolchain is None:
            raise EngineUnavailable("no C compiler (gcc or cc) on PATH")
        try:
            import onnx  # noqa: F401  (to read the trees)
            import tl2cgen  # noqa: F401
            import treelite  # noqa: F401
        except ImportError as error:
            raise EngineUnavailable(f"{error.name} is not installed") from error
        try:
            return cls._build(onnx_path, sha256=sha256, threads=threads, toolchain=toolchain)
        except EngineUnavailable:
            raise
        except Exception as error:  # a layout this reader does not know, a compiler failure: never a crash under auto
            raise EngineUnavailable(f"the trees could not be compiled: {type(error).__name__}: {error}") from error

    @classmethod
    def _build(cls, onnx_path: str | Path, *, sha256: str, threads: int, toolchain: str) -> CompiledTrees:
        plan = read_plan(onnx_path)
        with _compiled_lock:
            library = _compiled.pop(sha256, None)
            if library is None:
                library = Library(
                    cached_library(plan, sha256=sha256, threads=threads, toolchain=toolchain), threads=threads
                )
            _compiled[sha256] = library  # the newest last
            while len(_compiled) > KEPT_LIBRARIES:  # a scorer still holding an older one keeps it alive
                del _compiled[next(iter(_compiled))]
        return cls(plan, library)

    def run(
        self, numeric: dict[str, np.ndarray], categorical: dict[str, np.ndarray], *, reasons: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        out = self.library.predict(self.plan.encode(numeric, categorical))
        probabilities = probabilities_from_logits(out[:, : self.plan.n_models]).astype(float)
        if not reasons:
            return probabilities, np.zeros((0, self.plan.n_contributions), dtype=np.float32)
        return probabilities, np.ascontiguousarray(out[:, self.plan.n_models :])


def probe_columns(plan: GraphPlan, *, rows: int = PROBE_ROWS, seed: int = 0):
    """Rows that reach many leaves: each number drawn from its column's split thresholds (just below,
    at, just above) or missing; each category drawn from its values or missing."""
    rng = np.random.default_rng(seed)
    table = plan.trees
    numeric = {}
    for column, name in enumerate(plan.numeric):
        cuts = table.thresholds[(~table.is_leaf) & (table.features == column)].astype(float)
        candidates = np.concatenate([cuts, np.nextafter(cuts, np.inf), cuts - 1e-3, [np.nan, 0.0, 1.0]])
        numeric[name] = rng.choice(candidates, size=rows)
    categorical = {
        name: rng.choice(np.array([*categories, ""], dtype=object), size=rows) for name, categories in plan.blocks
    }
    return numeric, categorical


def max_differences(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    return {
        "probabilities": float(np.abs(first[0] - second[0]).max()),
        "contributions": float(np.abs(first[1].astype(float) - second[1].astype(float)).max()),
    }


def check_against(engine: CompiledTrees, reference) -> dict[str, float]:
    """Both engines on probe rows; EngineUnavailable unless they agree within PARITY_TOLERANCE.
    `reference(numeric, categorical)` returns onnxruntime's (probabilities, contributions)."""
    numeric, categorical = probe_columns(engine.plan)
    differences = max_differences(engine.run(numeric, categorical, reasons=True), reference(numeric, categorical))
    if max(differences.values()) > PARITY_TOLERANCE:
        raise EngineUnavailable(
            f"compiled trees differ from onnxruntime on probe rows: max |diff| probabilities "
            f"{differences['probabilities']:.2e}, contributions {differences['contributions']:.2e}"
        )
    return differences
