"""The VAE objectives, as losses to minimise over a batch (Sootla 2018, eq. 2.11, 2.13, 2.14).

- beta-VAE, eq. 2.11: -E[log p(x|z)] + beta * KL (beta = 1: the negative ELBO).
- capacity-controlled beta-VAE, eq. 2.13: -E[log p(x|z)] + gamma * |KL_z - C_z(t)|.
- JointVAE, eq. 2.14: -E[log p(x|z,c)] + gamma_z |KL_z - C_z(t)| + gamma_c |KL_c - C_c(t)|,
  with C_c(t) capped at sum_i log n_i, the largest KL a uniform prior allows.

As in Dupont's reference code, the capacity terms take the absolute value of the *batch-mean*
KL minus C (not the mean of per-example absolute values). C(t) rises linearly from C_min at
step 0 to C_max at step `iterations`, then stays there.
"""

from __future__ import annotations

import tensorflow as tf


def capacity(step: tf.Tensor, c_min: float, c_max: float, iterations: int,
             cap: float | None = None) -> tf.Tensor:
    """C(t) = min(C_min + (C_max - C_min) t / iterations, C_max), and at most `cap`."""
    t = tf.cast(step, tf.float32)
    value = tf.minimum(c_min + (c_max - c_min) * t / float(iterations), c_max)
    return value if cap is None else tf.minimum(value, cap)


def beta_vae_loss(reconstruction_ll: tf.Tensor, kl: tf.Tensor, beta: float) -> tf.Tensor:
    """Eq. 2.11 negated; `reconstruction_ll` and `kl` are batch means (nats per image)."""
    return -reconstruction_ll + beta * kl


def capacity_loss(reconstruction_ll: tf.Tensor, terms) -> tf.Tensor:
    """Eq. 2.13 / 2.14 negated: `terms` is a list of (batch-mean KL, C(t), gamma)."""
    loss = -reconstruction_ll
    for kl, target, gamma in terms:
        loss += gamma * tf.abs(kl - target)
    return loss


def l2_penalty(kernels, weight_decay: float) -> tf.Tensor:
    """weight_decay * sum of squared kernel entries (biases are not decayed)."""
    if weight_decay == 0 or not kernels:
        return tf.constant(0.0)
    return weight_decay * tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels])
