"""SPSA (third_party.cleverhans_tf2.spsa, Uesato et al. 2018) on linear models, where the
L-inf-ball minimiser of the margin has a closed form: for logits Z = (x - 1/2) W and two
classes, the untargeted margin Z_y - Z_o is minimised over ||delta||_inf <= eps at
delta* = eps * sign(w_o - w_y) (the box does not bind for these images)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from third_party.cleverhans_tf2 import spsa

DIM = 16
SHAPE = (4, 4, 1)


def linear(seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    w = (scale * rng.normal(size=(DIM, 2))).astype(np.float32)

    def logits_fn(x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.reshape(x, [-1, DIM]) - 0.5, w)

    return logits_fn, w


def test_spsa_reaches_the_closed_form_corner_of_the_ball() -> None:
    logits_fn, w = linear()
    rng = np.random.default_rng(1)
    x = rng.uniform(0.45, 0.55, size=(3, *SHAPE)).astype(np.float32)
    labels = np.argmax(logits_fn(x).numpy(), 1)
    eps = 0.05
    # The label's margin is too large to flip within eps, so SPSA runs all its iterations.
    never = lambda images: tf.one_hot(tf.constant(labels), 2) * 1e3  # noqa: E731
    adv, found = spsa(logits_fn, x, labels, eps, 200, learning_rate=0.01, delta=0.01,
                      spsa_samples=64, seed=3, success_fn=never)
    assert not found.any()
    delta = (adv - x).reshape(len(x), -1)
    other = 1 - labels
    best = eps * np.sign((w[:, other] - w[:, labels]).T)  # [n, DIM]
    assert np.all(np.abs(delta) <= eps + 1e-6)
    assert np.mean(np.sign(delta) == np.sign(best)) > 0.95
    dw = (w[:, labels] - w[:, other]).T  # margin = dw . (x - 1/2)
    reduction = -np.sum(dw * delta, 1)  # margin decrease achieved
    optimal = eps * np.abs(dw).sum(1)  # = -dw . delta*
    np.testing.assert_allclose(reduction, optimal, rtol=0.05)


def test_spsa_stops_at_the_first_adversarial_and_is_seeded() -> None:
    logits_fn, _ = linear(scale=3.0)
    rng = np.random.default_rng(2)
    x = rng.uniform(0.45, 0.55, size=(6, *SHAPE)).astype(np.float32)
    labels = np.argmax(logits_fn(x).numpy(), 1)
    adv, found = spsa(logits_fn, x, labels, 0.1, 100, spsa_samples=32, seed=5)
    predicted = np.argmax(logits_fn(adv).numpy(), 1)
    np.testing.assert_array_equal(found, predicted != labels)
    assert found.any()
    again, _ = spsa(logits_fn, x, labels, 0.1, 100, spsa_samples=32, seed=5)
    np.testing.assert_array_equal(adv, again)


def test_spsa_rejects_odd_samples() -> None:
    logits_fn, _ = linear()
    x = np.full((1, *SHAPE), 0.5, np.float32)
    with pytest.raises(ValueError, match="even"):
        spsa(logits_fn, x, np.array([0]), 0.1, 1, spsa_samples=3)


def test_upstream_spsa_fails_under_keras3() -> None:
    """Why the adapter exists (README, SPSA bug 1)."""
    from cleverhans.tf2.attacks.spsa import spsa as upstream

    logits_fn, _ = linear()
    x = tf.constant(np.full((1, *SHAPE), 0.5, np.float32))
    with pytest.raises((ValueError, TypeError), match="lr"):
        upstream(logits_fn, x, tf.constant([0]), 0.1, 1, clip_min=0.0, clip_max=1.0)
