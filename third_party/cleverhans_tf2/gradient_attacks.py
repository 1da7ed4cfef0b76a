"""FGSM / PGD on top of CleverHans 4.0.0's TF2 `fast_gradient_method`.

Fast Gradient (Sign) Method: Goodfellow et al. (2015); Projected Gradient Descent: Madry et
al. (2018); used as sanity-check attacks next to Carlini & Wagner (2017) for the robustness
experiments of Alemi et al. (2017, section 4.2).

`cleverhans.tf2.attacks.fast_gradient_method` works unchanged under TF 2.21 and is called
directly. `cleverhans.tf2.attacks.projected_gradient_descent` also runs, but its random start
uses unseeded `tf.random` ops (not reproducible without setting TensorFlow's global seed) and
checks `eps_iter <= eps` with a bare `assert`. The PGD loop below is upstream's loop (one
`fast_gradient_method` step, `clip_eta` projection onto the eps-ball, box clipping) with a
seeded, stateless random start drawn like upstream's `random_lp_vector`. Both pass upstream's
`loss_fn` through (None: upstream's softmax cross-entropy).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.fast_gradient_method import (
    fast_gradient_method as _upstream_fgm,
)
from cleverhans.tf2.utils import clip_eta

LogitsFn = Callable[[tf.Tensor], tf.Tensor]
LossFn = Callable[..., tf.Tensor]  # upstream's contract: loss_fn(labels=..., logits=...)


def fast_gradient_method(
    model_fn: LogitsFn,
    x: tf.Tensor,
    y: tf.Tensor,
    eps: float,
    norm: float,
    *,
    targeted: bool,
    clip_min: float,
    clip_max: float,
    loss_fn: LossFn | None = None,
) -> tf.Tensor:
    """One FGM step. `y` are the true labels (untargeted) or the targets (targeted)."""
    return _upstream_fgm(
        model_fn, x, eps, norm, loss_fn=loss_fn, clip_min=clip_min, clip_max=clip_max,
        y=tf.convert_to_tensor(y, tf.int64), targeted=targeted,
    )


def random_lp_start(shape: tf.TensorShape, norm: float, eps: float, seed: int) -> tf.Tensor:
    """Uniform sample from the L-inf or L2 ball of radius eps (stateless, seeded)."""
    seeds = tf.random.experimental.stateless_split(tf.constant([seed, 0], tf.int64), 2)
    if norm == np.inf:
        return tf.random.stateless_uniform(shape, seeds[0], -eps, eps)
    dim = int(np.prod(shape[1:]))
    direction = tf.random.stateless_normal((shape[0], dim), seeds[0])
    direction /= tf.norm(direction, axis=1, keepdims=True)
    radius = tf.random.stateless_uniform((shape[0], 1), seeds[1]) ** (1.0 / dim)
    return tf.reshape(eps * radius * direction, shape)


def projected_gradient_descent(
    model_fn: LogitsFn,
    x: tf.Tensor,
    y: tf.Tensor,
    eps: float,
    eps_iter: float,
    nb_iter: int,
    norm: float,
    *,
    targeted: bool,
    clip_min: float,
    clip_max: float,
    rand_init: bool = True,
    seed: int = 0,
    loss_fn: LossFn | None = None,
) -> tf.Tensor:
    """PGD (upstream's loop) with an optional seeded random start in the eps-ball."""
    x = tf.convert_to_tensor(x, tf.float32)
    eta = random_lp_start(x.shape, norm, eps, seed) if rand_init else tf.zeros_like(x)
    adv = tf.clip_by_value(x + clip_eta(eta, norm, eps), clip_min, clip_max)
    for _ in range(nb_iter):
        adv = fast_gradient_method(
            model_fn, adv, y, eps_iter, norm,
            targeted=targeted, clip_min=clip_min, clip_max=clip_max, loss_fn=loss_fn,
        )
        adv = tf.clip_by_value(x + clip_eta(adv - x, norm, eps), clip_min, clip_max)
    return adv
