"""Unsupervised accuracy of a discrete code: the best one-to-one mapping of categories to labels
(the Hungarian algorithm on the confusion matrix), as reported for JointVAE on MNIST (Dupont 2018).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def confusion(categories: np.ndarray, labels: np.ndarray, num_categories: int,
              num_labels: int) -> np.ndarray:
    """counts[k, y]: how many examples of label y fell in category k."""
    counts = np.zeros((num_categories, num_labels), dtype=np.int64)
    np.add.at(counts, (np.asarray(categories), np.asarray(labels)), 1)
    return counts


def best_mapping_accuracy(categories: np.ndarray, labels: np.ndarray,
                          num_categories: int, num_labels: int) -> tuple[float, dict[int, int]]:
    """(accuracy, {category: label}) of the best one-to-one assignment of categories to labels.

    With more categories than labels the extra categories stay unmapped and count as errors.
    """
    counts = confusion(categories, labels, num_categories, num_labels)
    rows, cols = linear_sum_assignment(-counts)
    correct = counts[rows, cols].sum()
    return float(correct / len(labels)), {int(r): int(c) for r, c in zip(rows, cols, strict=True)}
