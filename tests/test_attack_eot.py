"""EOT on an affine model with Gaussian logit noise (deepvib.attacks.eot / adaptive).

Two classes, logits l = (x - 1/2) W + b + eps g, eps ~ N(0, 1), g fixed. The margin
l_1 - l_0 = d(x) + eps (g_1 - g_0) with d affine, so the expected predictive
p(1|x) = E[sigmoid(d(x) + eps (g_1 - g_0))] is computed here by Gauss-Hermite quadrature;
its decision boundary is d(x) = 0 (the noise is symmetric), and the minimal L2 perturbation
that crosses it is |d(x)| / ||w_1 - w_0|| (the box does not bind for these images).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepvib.attacks import cw_l2
from deepvib.attacks.adaptive import AdaptiveConfig, Evaluator
from deepvib.attacks.eot import (
    eot_scores,
    expected_probs,
    sampled_classifier_accuracy,
)

DIM = 16
SHAPE = (4, 4, 1)
NOISE = 3.0  # std of the margin's noise: a 12-sample predictive is a coin flip near d = 0


def affine_problem(n: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(DIM, 2)).astype(np.float32)
    b = np.zeros(2, np.float32)
    g = np.array([[0.0, NOISE]], np.float32)  # F [r = 1, C = 2]

    def gaussian_fn(images: tf.Tensor):
        flat = tf.reshape(images, [-1, DIM]) - 0.5
        mean = tf.matmul(flat, w) + b
        return mean, tf.tile(tf.constant(g)[None], [tf.shape(mean)[0], 1, 1])

    x = rng.uniform(0.4, 0.6, size=(n, *SHAPE)).astype(np.float32)
    return gaussian_fn, w, b, x


def margin(w: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d(x) = mean logit 1 - mean logit 0."""
    flat = x.reshape(len(x), -1).astype(np.float64) - 0.5
    return flat @ (w[:, 1] - w[:, 0]) + (b[1] - b[0])


def quadrature_p1(d: np.ndarray) -> np.ndarray:
    """E[sigmoid(d + NOISE * eps)], eps ~ N(0, 1), by 80-point Gauss-Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    z = d[:, None] + NOISE * nodes[None]
    return (1.0 / (1.0 + np.exp(-z))) @ weights / np.sqrt(2 * np.pi)


def test_expected_probs_match_quadrature() -> None:
    gaussian_fn, w, b, x = affine_problem()
    probs = expected_probs(gaussian_fn, x, 20_000, seed=3)
    np.testing.assert_allclose(probs[:, 1], quadrature_p1(margin(w, b, x)), atol=0.01)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)


def test_common_random_numbers_make_the_objective_deterministic() -> None:
    gaussian_fn, _, _, x = affine_problem()
    common = eot_scores(gaussian_fn, 64, seed=1, common=True)
    fresh = eot_scores(gaussian_fn, 64, seed=1, common=False)
    np.testing.assert_array_equal(common(tf.constant(x)).numpy(), common(tf.constant(x)).numpy())
    assert not np.allclose(fresh(tf.constant(x)).numpy(), fresh(tf.constant(x)).numpy())


def test_eot_cw_finds_the_true_minimal_perturbation_and_never_a_false_one() -> None:
    gaussian_fn, w, b, x = affine_problem(n=8)
    labels = (margin(w, b, x) > 0).astype(np.int64)  # expected-predictive classes
    judge = eot_scores(gaussian_fn, 2000, seed=11, common=True)
    adversarial, result = cw_l2(
        eot_scores(gaussian_fn, 500, seed=5, common=True), x, labels,
        binary_search_steps=9, max_iterations=1000, learning_rate=1e-2, initial_const=1e-2,
        success_fn=judge)
    true_min = np.abs(margin(w, b, x)) / np.linalg.norm(w[:, 1] - w[:, 0])
    # Never a point that fails on the exact expected predictive (quadrature) ...
    p1 = quadrature_p1(margin(w, b, adversarial))
    assert np.all((p1 > 0.5) != labels.astype(bool))
    # ... and within 3% + 0.005 (an Adam step of 1e-2 in tanh space) of the true minimum.
    assert np.all(result.l2 >= true_min * (1 - 1e-4))
    np.testing.assert_allclose(result.l2, true_min, rtol=0.03, atol=0.005)


def test_plain_cw_on_fresh_12_sample_draws_keeps_lucky_points() -> None:
    """The failure the EOT setting removes: C&W's bookkeeping on a freshly sampled 12-sample
    predictive keeps points well inside the true class for some images."""
    gaussian_fn, w, b, x = affine_problem(n=8)
    labels = (margin(w, b, x) > 0).astype(np.int64)
    fresh_twelve = eot_scores(gaussian_fn, 12, 5, common=False, antithetic=False)
    adversarial, _ = cw_l2(fresh_twelve, x, labels, binary_search_steps=5, max_iterations=500,
                           initial_const=1e-2)
    p1 = quadrature_p1(margin(w, b, adversarial))
    assert np.any((p1 > 0.5) == labels.astype(bool))


def test_success_on_expected_predictive_rejects_a_lucky_draw() -> None:
    gaussian_fn, w, b, _ = affine_problem()
    # A point correctly classified (class 0) by the expected predictive, with margin -0.4.
    direction = (w[:, 1] - w[:, 0]) / np.linalg.norm(w[:, 1] - w[:, 0])
    point = (0.5 - 0.4 * direction / np.linalg.norm(w[:, 1] - w[:, 0])).reshape(1, *SHAPE)
    point = point.astype(np.float32)
    assert quadrature_p1(margin(w, b, point))[0] < 0.5
    twelve = eot_scores(gaussian_fn, 12, seed=0, common=False, antithetic=False)
    draws = [int(np.argmax(twelve(tf.constant(point)).numpy())) for _ in range(200)]
    assert 1 in draws, "some 12-sample draw should misclassify it (a lucky draw)"
    for seed in range(20):  # the judge is not fooled, whatever its draws
        evaluator = Evaluator(gaussian_fn, point, np.array([0]), AdaptiveConfig(seed=seed),
                              log=lambda s: None)
        outcome = evaluator.outcome("lucky", "l2", None, point, 0.0)
        assert not outcome.success[0]
    # The 12-sample classifier's expected accuracy matches the fraction of correct draws.
    np.testing.assert_allclose(outcome.classifier_accuracy[0], np.mean(np.array(draws) == 0),
                               atol=0.12)


def test_sampled_classifier_accuracy_of_a_deterministic_point() -> None:
    gaussian_fn, w, b, x = affine_problem()
    labels = (margin(w, b, x) > 0).astype(np.int64)
    far = np.abs(margin(w, b, x)) > 4 * NOISE / np.sqrt(12)
    acc = sampled_classifier_accuracy(gaussian_fn, x, labels, 12, 200, seed=0)
    assert np.all(acc[far] > 0.99)
    assert np.all((acc >= 0) & (acc <= 1))
