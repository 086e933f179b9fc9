"""A trained LightGBM model's trees, scored by ONNX Runtime's tree ensemble: prediction without LightGBM.

LightGBM's own `Booster.predict` costs about 30 ns per candidate and tree, pays a fixed cost on every call, and
its import pulls pandas and scikit-learn into a one-shot command (about a second). ONNX Runtime is loaded
already for the embedder; its TreeEnsembleRegressor walks the same trees with the same comparisons (double
thresholds, LightGBM's missing-value rules) and sums the same leaf values in the same order, in double, so its
scores are LightGBM's rounded to float32 (tested). A compiled loop of our own (numba) did the same at the cost
of LLVM in every server worker (about 120 MB each). Training still uses LightGBM (`recommender tune`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

VERSION = 1  # of what this code makes of a ready list: bump it when a change can alter one (`rank/fingerprint.py`)
# LightGBM's decision_type bits: 1 categorical, 2 default left, (>> 2) & 3 the missing type
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2


class ModelFormatError(ValueError):
    """A model file this reader does not support; the message names the file."""


@dataclass(frozen=True)
class Forest:
    """Every tree's internal nodes in one set of arrays. A child >= 0 is an internal node, a child < 0 is the
    leaf ~child; `roots` holds each tree's first node the same way (a tree of one leaf has a leaf root)."""

    feature: np.ndarray  # int32, the input column each node splits on
    threshold: np.ndarray  # float64: go left when value <= threshold
    default_left: np.ndarray  # bool: where a missing value goes
    missing: np.ndarray  # int8: MISSING_NONE (NaN counts as 0), MISSING_ZERO or MISSING_NAN
    left: np.ndarray  # int32
    right: np.ndarray  # int32
    leaf_value: np.ndarray  # float64
    roots: np.ndarray  # int32
    _sessions: dict[tuple, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def num_trees(self) -> int:
        return len(self.roots)

    @classmethod
    def load(cls, path: Path) -> Forest:
        """Read a model saved by LightGBM (`Booster.save_model`, text format)."""
        trees: list[dict[str, str]] = []
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                line = line.strip()
                if line.startswith("Tree="):
                    trees.append({})
                elif line == "end of trees":
                    break
                elif trees and "=" in line:
                    key, value = line.split("=", 1)
                    trees[-1][key] = value
        if not trees:
            raise ModelFormatError(f"{path}: no trees (not a LightGBM text model?)")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "decision", "left", "right")}
        leaves: list[np.ndarray] = []
        roots = []
        nodes = n_leaves = 0
        for number, tree in enumerate(trees):
            try:
                if int(tree.get("num_cat", "0")) or int(tree.get("is_linear", "0")):
                    raise ModelFormatError(f"{path}: tree {number} has categorical or linear splits, not supported")
                values = np.array(tree["leaf_value"].split(), dtype=np.float64)
                if int(tree["num_leaves"]) == 1:
                    roots.append(~n_leaves)
                else:
                    roots.append(nodes)
                    for key, array in _tree_arrays(tree, nodes, n_leaves).items():
                        parts[key].append(array)
                    nodes += len(parts["feature"][-1])
            except ModelFormatError:
                raise
            except (KeyError, ValueError) as exc:
                raise ModelFormatError(f"{path}: tree {number} is incomplete or malformed ({exc!r})") from None
            leaves.append(values)
            n_leaves += len(values)
        decision = np.concatenate(parts["decision"]) if parts["decision"] else np.zeros(0, np.int32)
        if np.any(decision & 1):
            raise ModelFormatError(f"{path}: categorical splits are not supported")
        if np.any((decision >> 2) & 3 == MISSING_ZERO):
            raise ModelFormatError(f"{path}: zero-as-missing splits are not supported (train without zero_as_missing)")

        def joined(key: str, dtype: type) -> np.ndarray:
            return np.concatenate(parts[key]).astype(dtype) if parts[key] else np.zeros(0, dtype)

        return cls(
            feature=joined("feature", np.int32),
            threshold=joined("threshold", np.float64),
            default_left=(decision & 2).astype(bool),
            missing=((decision >> 2) & 3).astype(np.int8),
            left=joined("left", np.int32),
            right=joined("right", np.int32),
            leaf_value=np.concatenate(leaves),
            roots=np.asarray(roots, dtype=np.int32),
        )

    def predict(self, rows: np.ndarray, stop: int | None = None, columns: np.ndarray | None = None) -> np.ndarray:
        """Raw scores (float32) of the first `stop` trees for each row of `rows` (float32). `columns` maps the
        model's features to columns of `rows` (no copy of a wider matrix)."""
        stop = self.num_trees if stop is None else max(0, min(stop, self.num_trees))
        if not len(rows) or not stop:
            return np.zeros(len(rows), dtype=np.float32)
        key = (stop, None if columns is None else tuple(int(c) for c in columns))
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = _session(self, stop, columns)
        data = np.asarray(rows, dtype=np.float64)  # exact: double thresholds need double input
        return session.run(None, {"rows": data})[0][:, 0]


def _session(forest: Forest, stop: int, columns: np.ndarray | None) -> Any:
    """An ONNX Runtime session that scores rows with the first `stop` trees of `forest`: one TreeEnsembleRegressor
    with double thresholds and leaf values, one thread, so that each row's leaves add up in tree order, in
    double, as LightGBM adds them."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    model = _onnx_model(forest, stop, columns)
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _onnx_model(forest: Forest, stop: int, columns: np.ndarray | None) -> bytes:
    """The first `stop` trees as ONNX (ai.onnx.ml TreeEnsembleRegressor). Within a tree, internal node j is
    node j and leaf j is node (internal nodes) + j. A NaN takes LightGBM's route: the default side at a NaN-as-missing
    split; elsewhere NaN counts as 0, so it goes where 0 would."""
    from onnx import TensorProto, helper

    feature = forest.feature if columns is None else np.asarray(columns, dtype=np.int64)[forest.feature]
    tree_ids: list[int] = []
    node_ids: list[int] = []
    features: list[int] = []
    modes: list[str] = []
    values: list[float] = []
    true_ids: list[int] = []
    false_ids: list[int] = []
    missing_true: list[int] = []
    target_tree: list[int] = []
    target_node: list[int] = []
    weights: list[float] = []
    # internal nodes and leaves are numbered tree after tree: a tree's internal nodes end where the next begin
    starts = [int(r) for r in forest.roots if r >= 0] + [len(forest.feature)]
    next_start = iter(starts[1:])
    first_leaf = 0
    for tree in range(stop):
        root = int(forest.roots[tree])
        internal = range(root, next(next_start)) if root >= 0 else range(0)
        m = len(internal)
        for node in internal:
            threshold = float(forest.threshold[node])
            tree_ids.append(tree)
            node_ids.append(node - root)
            features.append(int(feature[node]))
            modes.append("BRANCH_LEQ")
            values.append(threshold)
            for ids, child in ((true_ids, int(forest.left[node])), (false_ids, int(forest.right[node]))):
                ids.append(child - root if child >= 0 else m + ~child - first_leaf)
            nan_left = forest.default_left[node] if forest.missing[node] == MISSING_NAN else threshold >= 0.0
            missing_true.append(int(nan_left))
        for leaf in range(m + 1):
            tree_ids.append(tree)
            node_ids.append(m + leaf)
            features.append(0)
            modes.append("LEAF")
            values.append(0.0)
            true_ids.append(0)
            false_ids.append(0)
            missing_true.append(0)
            target_tree.append(tree)
            target_node.append(m + leaf)
            weights.append(float(forest.leaf_value[first_leaf + leaf]))
        first_leaf += m + 1
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["rows"],
        ["scores"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        nodes_treeids=tree_ids,
        nodes_nodeids=node_ids,
        nodes_featureids=features,
        nodes_modes=modes,
        nodes_values_as_tensor=helper.make_tensor("nodes_values", TensorProto.DOUBLE, [len(values)], values),
        nodes_truenodeids=true_ids,
        nodes_falsenodeids=false_ids,
        nodes_missing_value_tracks_true=missing_true,
        target_treeids=target_tree,
        target_nodeids=target_node,
        target_ids=[0] * len(weights),
        target_weights_as_tensor=helper.make_tensor("target_weights", TensorProto.DOUBLE, [len(weights)], weights),
    )
    graph = helper.make_graph(
        [node],
        "forest",
        [helper.make_tensor_value_info("rows", TensorProto.DOUBLE, [None, None])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 1])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString()


def _tree_arrays(tree: dict[str, str], nodes: int, n_leaves: int) -> dict[str, np.ndarray]:
    """One tree's internal nodes, numbered in the forest: `nodes` internal nodes and `n_leaves` leaves before it."""
    arrays: dict[str, np.ndarray] = {
        "feature": np.array(tree["split_feature"].split(), dtype=np.int32),
        "threshold": np.array(tree["threshold"].split(), dtype=np.float64),
        "decision": np.array(tree["decision_type"].split(), dtype=np.int32),
    }
    for key, line in (("left", "left_child"), ("right", "right_child")):
        child = np.array(tree[line].split(), dtype=np.int64)  # >= 0 an internal node, leaf j as -1 - j
        arrays[key] = np.where(child >= 0, child + nodes, child - n_leaves)
    return arrays
