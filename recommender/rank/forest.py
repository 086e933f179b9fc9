"""A trained LightGBM model's trees as flat arrays, walked by a compiled loop: prediction without LightGBM.

LightGBM's own `Booster.predict` costs about 30 ns per candidate and tree, pays a fixed cost on every call, and
its import pulls pandas and scikit-learn into a one-shot command (about a second). This walks the same trees
with the same comparisons (doubles, LightGBM's missing-value rules) and sums the same leaf values in the same
order, so its scores are LightGBM's to the last bit (tested); training still uses LightGBM (`recommender tune`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

# LightGBM's decision_type bits: 1 categorical, 2 default left, (>> 2) & 3 the missing type
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
ZERO = 1e-35  # LightGBM's kZeroThreshold


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

    def predict(
        self,
        rows: np.ndarray,
        start: int = 0,
        stop: int | None = None,
        columns: np.ndarray | None = None,
        initial: np.ndarray | None = None,
    ) -> np.ndarray:
        """Raw scores (float64) of trees `start`..`stop` for each row of `rows`. `columns` maps the model's
        features to columns of `rows` (no copy of a wider matrix); `initial` continues a sum begun by earlier
        trees, so that two passes add up exactly as one."""
        stop = self.num_trees if stop is None else min(stop, self.num_trees)
        feature = self.feature if columns is None else np.asarray(columns, dtype=np.int32)[self.feature]
        out = np.zeros(len(rows)) if initial is None else np.array(initial, dtype=np.float64)
        if len(rows) and stop > start:
            _walk(
                np.ascontiguousarray(rows),
                feature,
                self.threshold,
                self.default_left,
                self.missing,
                self.left,
                self.right,
                self.leaf_value,
                self.roots,
                start,
                stop,
                out,
            )
        return out


def _tree_arrays(tree: dict[str, str], nodes: int, n_leaves: int) -> dict[str, np.ndarray]:
    """One tree's internal nodes, numbered in the forest: `nodes` internal nodes and `n_leaves` leaves before it."""
    arrays: dict[str, np.ndarray] = {
        "feature": np.array(tree["split_feature"].split(), dtype=np.int32),
        "threshold": np.array(tree["threshold"].split(), dtype=np.float64),
        "decision": np.array(tree["decision_type"].split(), dtype=np.int32),
    }
    for key, field in (("left", "left_child"), ("right", "right_child")):
        child = np.array(tree[field].split(), dtype=np.int64)  # >= 0 an internal node, leaf j as -1 - j
        arrays[key] = np.where(child >= 0, child + nodes, child - n_leaves)
    return arrays


@numba.njit(cache=True, nogil=True)
def _walk(rows, feature, threshold, default_left, missing, left, right, leaf_value, roots, start, stop, out):
    # tree by tree (one tree's nodes stay in cache while every row walks it); the rules of LightGBM's
    # Tree::NumericalDecision
    for tree in range(start, stop):
        root = roots[tree]
        for i in range(rows.shape[0]):
            node = root
            while node >= 0:
                value = np.float64(rows[i, feature[node]])
                kind = missing[node]
                if np.isnan(value) and kind != MISSING_NAN:
                    value = 0.0
                if (kind == MISSING_ZERO and abs(value) <= ZERO) or (kind == MISSING_NAN and np.isnan(value)):
                    go_left = default_left[node]
                else:
                    go_left = value <= threshold[node]
                node = left[node] if go_left else right[node]
            out[i] += leaf_value[~node]
