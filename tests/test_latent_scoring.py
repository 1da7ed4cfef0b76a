"""Scoring of the latent-space attack (Sootla 2018, Tables 4.1-4.6) on hand-made predictions,
and the pair plan shared by every model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepvib.experiments import latent_scoring as ls
from deepvib.experiments.latent_pairs import PairPlan, draw_pairs

NAN = np.nan

# Three classes, two repeats, two pairs per (source, target) cell: (s, t) -> predictions.
PREDICTIONS = {
    0: {(0, 1): [1, 0], (0, 2): [1, 2], (1, 0): [1, 1], (1, 2): [2, 2], (2, 0): [0, 1],
        (2, 1): [2, 2]},
    1: {(0, 1): [1, 1], (0, 2): [0, 0], (1, 0): [0, 1], (1, 2): [2, 0], (2, 0): [2, 2],
        (2, 1): [1, 1]},
}
# Worked by hand from PREDICTIONS (rows: source, columns: target).
IGNORE_MEAN = [[NAN, 0.75, 0.5], [0.25, NAN, 1.0], [0.5, 0.5, NAN]]
IGNORE_STD = [[NAN, 0.25, 0.5], [0.25, NAN, 0.0], [0.5, 0.5, NAN]]
TARGET_MEAN = [[NAN, 0.75, 0.25], [0.25, NAN, 0.75], [0.25, 0.5, NAN]]
TARGET_STD = [[NAN, 0.25, 0.25], [0.25, NAN, 0.25], [0.25, 0.5, NAN]]


def hand_made():
    s, t, p, r = [], [], [], []
    for repeat, cells in PREDICTIONS.items():
        for (source, target), predicted in cells.items():
            s += [source] * len(predicted)
            t += [target] * len(predicted)
            p += predicted
            r += [repeat] * len(predicted)
    return tuple(np.array(a) for a in (s, t, p, r))


def test_matrices_marginals_and_means_on_hand_made_predictions():
    tables = ls.score(*hand_made(), num_classes=3)
    ignore, target = tables["ignore_target"], tables["target"]
    np.testing.assert_allclose(ignore.mean, IGNORE_MEAN)
    np.testing.assert_allclose(ignore.std, IGNORE_STD)
    np.testing.assert_allclose(target.mean, TARGET_MEAN)
    np.testing.assert_allclose(target.std, TARGET_STD)
    assert ignore.per_repeat.shape == (2, 3, 3)
    np.testing.assert_allclose(ignore.per_repeat[0, 0], [NAN, 0.5, 1.0])
    # Marginals: means of the off-diagonal cell means; bracketed std: mean of the cell stds.
    np.testing.assert_allclose(ignore.source_mean, [0.625, 0.625, 0.5])
    np.testing.assert_allclose(ignore.source_std, [0.375, 0.125, 0.5])
    np.testing.assert_allclose(ignore.target_mean, [0.375, 0.625, 0.75])
    np.testing.assert_allclose(ignore.target_std, [0.375, 0.375, 0.25])
    # Source 0 per repeat: (0.5 + 1) / 2 = 0.75 and (1 + 0) / 2 = 0.5.
    assert ignore.source_std_over_repeats[0] == pytest.approx(0.125)
    assert ignore.overall_mean == pytest.approx(3.5 / 6)
    assert ignore.overall_std == pytest.approx(np.mean([0.25, 0.5, 0.25, 0.0, 0.5, 0.5]))
    assert ignore.overall_std_over_repeats == pytest.approx(0.0)  # 3.5/6 in both repeats
    assert target.overall_mean == pytest.approx(2.75 / 6)
    assert target.overall_std_over_repeats == pytest.approx(0.5 / 12)  # 2.5/6 and 3/6


def test_a_single_repeat_has_zero_std_and_json_has_no_nan():
    s, t, p, r = hand_made()
    first = r == 0
    tables = ls.score(s[first], t[first], p[first], r[first], num_classes=3)
    finite = np.isfinite(tables["target"].std)
    assert np.all(tables["target"].std[finite] == 0.0) and finite.sum() == 6
    text = json.dumps(tables["target"].to_json_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["mean"][0] == [None, 0.5, 0.5]
    assert data["repeats"] == 1


def test_empty_cells_are_nan_and_do_not_count():
    tables = ls.score(np.array([0, 0]), np.array([1, 1]), np.array([1, 0]), np.array([0, 0]),
                      num_classes=3)
    table = tables["target"]
    assert table.mean[0, 1] == 0.5 and np.isnan(table.mean[0, 2]) and np.isnan(table.mean[1, 0])
    assert table.overall_mean == 0.5
    np.testing.assert_allclose(table.source_mean, [0.5, NAN, NAN])


@pytest.mark.parametrize("change, message", [
    (lambda s, t, p, r: (s, t[:-1], p, r), "same length"),
    (lambda s, t, p, r: (s, t, p.astype(float), r), "integers"),
    (lambda s, t, p, r: (s, t, p + 5, r), r"in \[0, 3\)"),
    (lambda s, t, p, r: (s, s, p, r), "source class == target class"),
    (lambda s, t, p, r: (s, t, p, r + 1), "numbered 0..R-1"),
    (lambda s, t, p, r: (s[:0], t[:0], p[:0], r[:0]), "no pairs"),
])
def test_bad_predictions_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        ls.score(*change(*hand_made()), num_classes=3)


def test_markdown_follows_the_thesis_layout():
    tables = ls.score(*hand_made(), num_classes=3)
    matrix = ls.matrix_table(tables["ignore_target"]).splitlines()
    assert matrix[0] == "| Source \\ Target | 0 | 1 | 2 |"
    assert matrix[2] == "| 0 | – | 75.00% | 50.00% |"
    assert matrix[3] == "|  | – | (25.00%) | (50.00%) |"
    means = ls.means_table([("Disentangled", tables)]).splitlines()
    assert means[2] == "| Disentangled | 58.33% (±0.00%) | 45.83% (±4.17%) |"
    source = ls.marginals_table([("Disentangled", tables)], "source").splitlines()
    assert source[2] == "| Disentangled | 62.50% | 62.50% | 50.00% |"
    assert source[3] == "| Disentangled | (37.50%) | (12.50%) | (50.00%) |"
    target = ls.marginals_table([("m", tables)], "target", "target").splitlines()
    assert target[2] == "| m | 25.00% | 62.50% | 50.00% |"
    page = ls.model_markdown("Disentangled", tables)
    assert page.count("| Source \\ Target |") == 2 and "AS target per" in page


def test_the_thesis_marginals_are_means_of_its_matrix():
    """The convention above, on the thesis's own numbers (Table 4.4, disentangled, source 0):
    its row mean is Table 4.2's 8.89% and its mean std is Table 4.2's (3.18%)."""
    row_mean = [6.58, 11.12, 8.36, 9.21, 11.15, 8.13, 7.60, 8.74, 9.10]
    row_std = [0.00, 5.98, 3.34, 1.99, 6.44, 4.71, 0.31, 5.89, 0.00]
    per_repeat = np.full((2, 10, 10), np.nan)
    per_repeat[0, 0, 1:] = np.array(row_mean) - np.array(row_std)
    per_repeat[1, 0, 1:] = np.array(row_mean) + np.array(row_std)
    table = ls.score_table("ignore_target", per_repeat / 100)
    assert 100 * table.source_mean[0] == pytest.approx(8.89, abs=0.005)
    assert 100 * table.source_std[0] == pytest.approx(3.18, abs=0.005)


def test_pairs_fill_every_cell_from_the_right_classes():
    labels = np.repeat(np.arange(10), 7)[np.random.default_rng(0).permutation(70)]
    plan = draw_pairs(labels, pairs_per_class_pair=3, repeats=2, seed=5)
    assert len(plan) == 2 * 90 * 3
    np.testing.assert_array_equal(labels[plan.source_index], plan.source_class)
    np.testing.assert_array_equal(labels[plan.target_index], plan.target_class)
    assert np.all(plan.source_class != plan.target_class)
    cells: dict[tuple, list] = {}
    for i, key in enumerate(zip(plan.repeat, plan.source_class, plan.target_class,
                                strict=True)):
        cells.setdefault(key, []).append(i)
    assert len(cells) == 180 and {len(v) for v in cells.values()} == {3}
    # Without replacement inside a cell; the two repeats draw differently.
    for rows in cells.values():
        assert len(set(plan.source_index[rows])) == 3 == len(set(plan.target_index[rows]))
    half = len(plan) // 2
    assert not np.array_equal(plan.source_index[:half], plan.source_index[half:])


def test_pairs_are_seeded_and_extend_with_repeats():
    labels = np.repeat(np.arange(10), 5)
    one = draw_pairs(labels, 2, 1, seed=1)
    two = draw_pairs(labels, 2, 2, seed=1)
    np.testing.assert_array_equal(two.source_index[:len(one)], one.source_index)
    np.testing.assert_array_equal(two.target_index[:len(one)], one.target_index)
    other = draw_pairs(labels, 2, 1, seed=2)
    assert not np.array_equal(other.source_index, one.source_index)
    back = PairPlan.from_json_dict(json.loads(json.dumps(two.to_json_dict())))
    np.testing.assert_array_equal(back.target_index, two.target_index)


def test_bad_pair_plans_are_rejected():
    labels = np.repeat(np.arange(10), 2)
    with pytest.raises(ValueError, match="fewer than"):
        draw_pairs(labels, 3, 1, seed=0)
    with pytest.raises(ValueError, match="positive integer"):
        draw_pairs(labels, 0, 1, seed=0)
    with pytest.raises(ValueError, match="positive integer"):
        draw_pairs(labels, 1, 0, seed=0)
