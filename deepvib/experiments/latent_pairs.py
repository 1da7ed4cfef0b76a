"""Which (source, target) test images the latent-space attack uses (Sootla 2018, Results).

For every repeat r and every ordered class pair (s, t), s != t, `pairs_per_class_pair` source
images of class s and as many target images of class t are drawn without replacement from the
test split, the j-th source paired with the j-th target. Each cell's draw is seeded by
(seed, r, s, t) alone, so the plan depends only on the test labels and these numbers: every
model is attacked on the same pairs, and adding repeats leaves the earlier ones unchanged.
Plain NumPy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class PairPlan:
    """One entry per pair, ordered by (repeat, source class, target class, j)."""

    source_index: np.ndarray
    target_index: np.ndarray
    source_class: np.ndarray
    target_class: np.ndarray
    repeat: np.ndarray

    def __len__(self) -> int:
        return len(self.source_index)

    def to_json_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name).tolist() for f in dataclasses.fields(self)}

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> PairPlan:
        return cls(**{f.name: np.asarray(data[f.name], np.int64)
                      for f in dataclasses.fields(cls)})


def draw_pairs(
    labels: np.ndarray, pairs_per_class_pair: int, repeats: int, seed: int,
    num_classes: int = 10,
) -> PairPlan:
    """The pair plan for test `labels` (see module doc)."""
    labels = np.asarray(labels)
    for name, value in (("pairs_per_class_pair", pairs_per_class_pair), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    by_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
    scarce = [c for c, idx in enumerate(by_class) if len(idx) < pairs_per_class_pair]
    if scarce:
        raise ValueError(f"classes {scarce} have fewer than pairs_per_class_pair="
                         f"{pairs_per_class_pair} test images")
    columns: dict[str, list[np.ndarray]] = {f.name: [] for f in dataclasses.fields(PairPlan)}
    n = pairs_per_class_pair
    for r in range(repeats):
        for s in range(num_classes):
            for t in range(num_classes):
                if s == t:
                    continue
                rng = np.random.default_rng([seed, r, s, t])
                columns["source_index"].append(rng.choice(by_class[s], n, replace=False))
                columns["target_index"].append(rng.choice(by_class[t], n, replace=False))
                columns["source_class"].append(np.full(n, s))
                columns["target_class"].append(np.full(n, t))
                columns["repeat"].append(np.full(n, r))
    return PairPlan(**{k: np.concatenate(v).astype(np.int64) for k, v in columns.items()})
