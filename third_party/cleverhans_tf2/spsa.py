"""SPSA attack (Uesato et al. 2018): CleverHans 4.0.0's TF2 `spsa` with its bugs fixed.

Gradient-free: the gradient of the margin loss is estimated from loss values at mirrored
random Rademacher perturbations (simultaneous perturbation stochastic approximation) and used
in Adam steps projected onto the L-inf ball of radius eps and the box. It is the
obfuscated-gradient check of Athalye et al. (2018) and Carlini et al. (2019): an attack that
never differentiates the model cannot be misled by masked or noisy gradients.

Kept from upstream (`cleverhans/tf2/attacks/spsa.py`): `margin_logit_loss` (imported), the
mirrored +/- delta sampling with `spsa_samples / 2` sign vectors per evaluation, the Adam
update, the L-inf/box projection and the uniform random start in the eps-ball. Replaced (see
README.md): upstream's `SPSAAdam` cannot be constructed under Keras 3 (`lr=`), it attacks one
image at a time, its draws are unseeded, its gradient estimate is scaled by delta, and it
returns the last iterate (a success found on the way is lost unless the batch-mean loss crosses
an early-stop threshold).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.spsa import margin_logit_loss

LogitsFn = Callable[[tf.Tensor], tf.Tensor]

_ADAM_BETA1 = 0.9
_ADAM_BETA2 = 0.999
_ADAM_EPSILON = 1e-7  # Keras' Adam default, which upstream's SPSAAdam inherits


def spsa(
    model_fn: LogitsFn,
    x: np.ndarray,
    y: np.ndarray,
    eps: float,
    nb_iter: int,
    *,
    targeted: bool = False,
    clip_min: float = 0.0,
    clip_max: float = 1.0,
    learning_rate: float = 0.01,
    delta: float = 0.01,
    spsa_samples: int = 128,
    seed: int = 0,
    success_fn: LogitsFn | None = None,
    batch_size: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """SPSA on every image of `x` (float32 [N, ...] in the box); returns (adversarial, found).

    Each image has its own perturbation, sign vectors and Adam state; `batch_size` images are
    processed together (the model sees `batch_size * spsa_samples` inputs per step). An image
    stops as soon as its iterate is adversarial on `success_fn` (default `model_fn`): that
    iterate is returned and `found` is True; otherwise the last iterate is returned.
    `y` are labels (untargeted) or targets (targeted).
    """
    if spsa_samples < 2 or spsa_samples % 2:
        raise ValueError(f"spsa_samples must be even and >= 2, got {spsa_samples}")
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int64)
    judge = success_fn or model_fn
    adv, found = [], []
    for i in range(0, len(x), batch_size):
        a, f = _spsa_batch(model_fn, judge, x[i : i + batch_size], y[i : i + batch_size], eps,
                           nb_iter, targeted, clip_min, clip_max, learning_rate, delta,
                           spsa_samples // 2, (seed, i))
        adv.append(a)
        found.append(f)
    return np.concatenate(adv), np.concatenate(found)


def _loss(model_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, targeted: bool) -> tf.Tensor:
    """Upstream's loss: margin loss, minimised (towards the target / away from the label)."""
    logits = model_fn(x)
    margin = margin_logit_loss(logits, y, nb_classes=logits.shape[-1])
    return margin if targeted else -margin


def _spsa_batch(model_fn, judge, x, y, eps, nb_iter, targeted, clip_min, clip_max,
                learning_rate, delta, half, seed) -> tuple[np.ndarray, np.ndarray]:
    x = tf.constant(x)
    y = tf.constant(y)
    n = x.shape[0]
    image_shape = x.shape[1:]
    key = tf.constant([seed[0], seed[1]], tf.int64)
    start = tf.random.stateless_uniform(x.shape, key, -eps, eps)
    pert = _project(start, x, eps, clip_min, clip_max)
    m = tf.zeros_like(x)
    v = tf.zeros_like(x)
    found = tf.zeros([n], tf.bool)
    best = x + pert

    @tf.function
    def step(pert, m, v, t, found, best):
        step_key = tf.random.experimental.stateless_fold_in(key, t)
        signs = tf.sign(tf.random.stateless_uniform([n, half, *image_shape], step_key, -1, 1))
        signs = tf.concat([signs, -signs], axis=1)  # mirrored, as upstream
        probes = tf.reshape(x[:, None] + pert[:, None] + delta * signs, [-1, *image_shape])
        labels = tf.repeat(y, 2 * half)
        losses = tf.reshape(_loss(model_fn, probes, labels, targeted), [n, 2 * half])
        expand = [n, 2 * half] + [1] * len(image_shape)
        # SPSA estimate: mean_j L_j s_j / delta (upstream omits the 1 / delta).
        grad = tf.reduce_mean(tf.reshape(losses, expand) * signs, axis=1) / delta
        t_float = tf.cast(t, tf.float32)
        m = _ADAM_BETA1 * m + (1 - _ADAM_BETA1) * grad
        v = _ADAM_BETA2 * v + (1 - _ADAM_BETA2) * tf.square(grad)
        m_hat = m / (1 - _ADAM_BETA1**t_float)
        v_hat = v / (1 - _ADAM_BETA2**t_float)
        active = tf.reshape(~found, [n] + [1] * len(image_shape))
        new = _project(pert - learning_rate * m_hat / (tf.sqrt(v_hat) + _ADAM_EPSILON), x, eps,
                       clip_min, clip_max)
        pert = tf.where(active, new, pert)
        candidate = x + pert
        success = _success(judge(candidate), y, targeted) & ~found
        best = tf.where(tf.reshape(success, [n] + [1] * len(image_shape)), candidate, best)
        return pert, m, v, found | success, best

    found = _success(judge(best), y, targeted)
    for t in range(1, nb_iter + 1):
        if bool(tf.reduce_all(found)):
            break
        pert, m, v, found, best = step(pert, m, v, tf.constant(t, tf.int64), found, best)
    best = tf.where(tf.reshape(found, [n] + [1] * len(image_shape)), best, x + pert)
    return best.numpy(), found.numpy()


def _success(logits: tf.Tensor, y: tf.Tensor, targeted: bool) -> tf.Tensor:
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int64)
    return tf.equal(predicted, y) if targeted else tf.not_equal(predicted, y)


def _project(pert: tf.Tensor, x: tf.Tensor, eps: float, clip_min: float,
             clip_max: float) -> tf.Tensor:
    """Upstream's `_project_perturbation`: onto the L-inf eps-ball, then into the box."""
    pert = tf.clip_by_value(pert, -eps, eps)
    return tf.clip_by_value(x + pert, clip_min, clip_max) - x
