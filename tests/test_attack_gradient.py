"""FGSM / PGD (Goodfellow et al. 2015; Madry et al. 2018) on affine models, where the
fast-gradient step has a closed form: softmax cross-entropy on Z = (x - c) W has input
gradient W (p - onehot), so FGSM moves by eps * sign(W (p - onehot))."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from deepvib.attacks import fgsm, pgd
from deepvib.attacks.gradient import margin_loss

DIM = 16
SHAPE = (4, 4, 1)
CENTER = 0.5


def setup_problem(k: int = 3, n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(DIM, k)).astype(np.float32)
    w = tf.constant(weights)

    def logits_fn(x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.reshape(x, [-1, DIM]) - CENTER, w)

    x = rng.uniform(0.3, 0.7, size=(n, *SHAPE)).astype(np.float32)
    labels = np.argmax(logits_fn(x).numpy(), axis=1)
    return logits_fn, weights, x, labels


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ce_gradient(weights: np.ndarray, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """d CE(classes) / dx for the affine model, [n, DIM]."""
    p = softmax((x.reshape(len(x), -1) - CENTER) @ weights)
    return (p - np.eye(weights.shape[1])[classes]) @ weights.T


def test_fgsm_linf_is_eps_sign_gradient() -> None:
    logits_fn, weights, x, labels = setup_problem()
    eps = 0.05
    adv, res = fgsm(logits_fn, x, labels, eps)
    expected = eps * np.sign(ce_gradient(weights, x, labels))
    np.testing.assert_allclose(adv.reshape(len(x), -1) - x.reshape(len(x), -1), expected,
                               atol=1e-6)
    np.testing.assert_allclose(res.linf, eps, rtol=1e-5)
    assert res.attack == "fgsm" and not res.targeted


def test_fgsm_targeted_descends_target_loss() -> None:
    logits_fn, weights, x, labels = setup_problem(k=4)
    targets = (labels + 1) % 4
    eps = 0.05
    adv, res = fgsm(logits_fn, x, labels, eps, targets=targets)
    expected = -eps * np.sign(ce_gradient(weights, x, targets))
    np.testing.assert_allclose(adv.reshape(len(x), -1) - x.reshape(len(x), -1), expected,
                               atol=1e-6)
    assert res.targeted
    np.testing.assert_array_equal(res.success, res.predicted == targets)


def test_fgsm_l2_is_normalised_gradient_and_large_eps_succeeds() -> None:
    logits_fn, weights, x, labels = setup_problem(k=2)
    eps = 0.2
    adv, res = fgsm(logits_fn, x, labels, eps, norm=2)
    g = ce_gradient(weights, x, labels)
    expected = eps * g / np.linalg.norm(g, axis=1, keepdims=True)
    np.testing.assert_allclose(adv.reshape(len(x), -1) - x.reshape(len(x), -1), expected,
                               atol=1e-6)
    # For 2 classes the L2 step is along w0 - w1: it succeeds iff eps > margin / ||w0 - w1||.
    z = (x.reshape(len(x), -1) - CENTER) @ weights
    distance = np.abs(z[:, 0] - z[:, 1]) / np.linalg.norm(weights[:, 0] - weights[:, 1])
    np.testing.assert_array_equal(res.success, distance < eps)


def test_fgsm_clips_to_box() -> None:
    logits_fn, _, x, labels = setup_problem()
    x_edge = np.where(x > 0.5, 1.0, 0.0).astype(np.float32)
    labels = np.argmax(logits_fn(x_edge).numpy(), axis=1)
    adv, _ = fgsm(logits_fn, x_edge, labels, 0.3)
    assert adv.min() >= 0.0 and adv.max() <= 1.0


@pytest.mark.parametrize("norm", [np.inf, 2])
def test_pgd_stays_in_ball_and_box(norm: float) -> None:
    logits_fn, _, x, labels = setup_problem(k=3, n=8)
    x = np.clip(x + np.float32(0.25) * np.sign(x - 0.5), 0, 1)  # near the edges: box active
    labels = np.argmax(logits_fn(x).numpy(), axis=1)
    eps = 0.1 if norm == np.inf else 0.8
    adv, res = pgd(logits_fn, x, labels, eps, eps / 4, 20, norm=norm, seed=3)
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    norms = res.linf if norm == np.inf else res.l2
    assert (norms <= eps * (1 + 1e-5)).all(), norms
    assert (norms >= 0.5 * eps).all()  # it actually moved (no trivial zero perturbation)


def test_pgd_l2_succeeds_iff_eps_exceeds_boundary_distance() -> None:
    logits_fn, weights, x, labels = setup_problem(k=2, n=10, seed=4)
    z = (x.reshape(len(x), -1) - CENTER) @ weights
    distance = np.abs(z[:, 0] - z[:, 1]) / np.linalg.norm(weights[:, 0] - weights[:, 1])
    eps = float(np.median(distance))
    # No box interference: the minimal perturbation stays well inside [0, 1].
    assert distance.max() < 0.25
    _, res = pgd(logits_fn, x, labels, eps, eps / 5, 30, norm=2, rand_init=False)
    clear = np.abs(distance - eps) > 0.02 * eps
    np.testing.assert_array_equal(res.success[clear], (distance < eps)[clear])


def test_pgd_targeted_reaches_target() -> None:
    logits_fn, _, x, labels = setup_problem(k=4, n=8, seed=2)
    targets = (labels + 2) % 4
    _, res = pgd(logits_fn, x, labels, 0.3, 0.02, 40, targets=targets, seed=1)
    assert res.success.all()
    np.testing.assert_array_equal(res.predicted, targets)


def test_pgd_random_start_is_seeded() -> None:
    logits_fn, _, x, labels = setup_problem()
    a, _ = pgd(logits_fn, x, labels, 0.05, 0.01, 1, seed=7)
    b, _ = pgd(logits_fn, x, labels, 0.05, 0.01, 1, seed=7)
    c, _ = pgd(logits_fn, x, labels, 0.05, 0.01, 1, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_margin_loss_by_hand() -> None:
    logits = tf.constant([[2.0, 5.0, -1.0], [0.0, -3.0, 4.0]])
    np.testing.assert_allclose(margin_loss(tf.constant([1, 0]), logits).numpy(), [-3.0, 4.0])


def test_margin_pgd_breaks_a_saturated_model_that_stalls_cross_entropy() -> None:
    """Logits scaled x1000: the softmax is exactly one-hot in float32 at most clean images, so
    the cross-entropy's input gradient is 0 there and PGD-L2 (no random start) cannot move;
    the margin's gradient is w_j - w_y whatever the scale, and reaches the closed-form
    boundary."""
    _, weights, x, labels = setup_problem(k=2, n=10, seed=4)
    w = tf.constant(1000 * weights)

    def saturated(images: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.reshape(images, [-1, DIM]) - CENTER, w)

    z = (x.reshape(len(x), -1) - CENTER) @ weights
    distance = np.abs(z[:, 0] - z[:, 1]) / np.linalg.norm(weights[:, 0] - weights[:, 1])
    eps = 1.5 * float(distance.max())
    assert eps < 0.4  # the minimal perturbation stays inside the box
    args = (saturated, x, labels, eps, eps / 10, 30)
    _, ce = pgd(*args, norm=2, rand_init=False)
    _, margin = pgd(*args, norm=2, rand_init=False, loss="margin")
    saturated_images = 1000 * np.abs(z[:, 0] - z[:, 1]) > 120  # exp(-120) is 0 in float32
    assert saturated_images.sum() >= 5
    assert not ce.success[saturated_images].any()
    np.testing.assert_array_equal(ce.l2[saturated_images], 0.0)
    assert margin.success.all()
    assert margin.params["loss"] == "margin"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": "hinge"}, "loss must be one of"),
        ({"eps": 0.01, "eps_iter": 0.02}, "eps_iter"),
        ({"norm": 1}, "norm"),
        ({"nb_iter": 0}, "nb_iter"),
        ({"eps": -0.1}, "eps"),
        ({"targets": np.zeros(6, np.int64)}, "targets equal labels"),
    ],
)
def test_pgd_bad_input(kwargs: dict, message: str) -> None:
    logits_fn, _, x, _ = setup_problem()
    args = {"eps": 0.1, "eps_iter": 0.01, "nb_iter": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        pgd(logits_fn, x, np.zeros(6, np.int64), args.pop("eps"), args.pop("eps_iter"),
            args.pop("nb_iter"), **args)


def test_fgsm_bad_input() -> None:
    logits_fn, _, x, labels = setup_problem()
    with pytest.raises(ValueError, match="clip_min, clip_max"):
        fgsm(logits_fn, x * 3.0, labels, 0.1)
    with pytest.raises(ValueError, match="labels must have shape"):
        fgsm(logits_fn, x, labels[:2], 0.1)
