"""FGSM and PGD attacks (Goodfellow et al. 2015; Madry et al. 2018) with the same
`(adversarial, AttackResult)` interface as the Carlini & Wagner (2017) L2 attack; companions
of the robustness evaluation of Alemi et al. (2017, section 4.2). Built on CleverHans 4.0.0's
`fast_gradient_method` via `third_party.cleverhans_tf2`.

PGD ascends the softmax cross-entropy by default (as upstream) or, with `loss="margin"`, the
margin max_{i != y} Z_i - Z_y of Carlini & Wagner (2017, their f_6 without the cap). The
cross-entropy's gradient vanishes once a confident model's softmax rounds to 1 in float32,
which stalls PGD-L2 on such a model (docs/robustness.md); the margin's does not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from deepvib.attacks import validation as v
from deepvib.attacks.results import AttackResult
from third_party.cleverhans_tf2 import fast_gradient_method, projected_gradient_descent

LogitsFn = Callable[[tf.Tensor], tf.Tensor]
LOSSES = ("cross_entropy", "margin")


def margin_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """[B] max_{i != label} Z_i - Z_label: positive exactly when the label is not the argmax."""
    labels = tf.cast(labels, tf.int32)
    true = tf.gather(logits, labels, axis=1, batch_dims=1)
    is_label = tf.one_hot(labels, tf.shape(logits)[1]) > 0
    other = tf.reduce_max(tf.where(is_label, logits.dtype.min, logits), axis=1)
    return other - true


def _loss_fn(loss: str):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if loss == "cross_entropy":
        return None  # upstream's default
    return margin_loss


def fgsm(
    logits_fn: LogitsFn,
    images: np.ndarray,
    labels: np.ndarray,
    eps: float,
    *,
    norm: float = np.inf,
    targets: np.ndarray | None = None,
    clip_min: float = 0.0,
    clip_max: float = 1.0,
) -> tuple[np.ndarray, AttackResult]:
    """One fast-gradient step of size `eps` on the softmax cross-entropy.

    Untargeted: increases the loss of the true `labels`. Targeted: decreases the loss of
    `targets`. `norm=np.inf` is FGSM (x + eps * sign(grad)); 1 and 2 give the L1/L2 variants.
    The result is clipped to [clip_min, clip_max]; `success`/`predicted` are evaluated on it.
    """
    x, labels, targets = _check_inputs(images, labels, targets, clip_min, clip_max)
    eps = v.check_positive("eps", eps)
    if norm not in (np.inf, 1, 2):
        raise ValueError(f"norm must be np.inf, 1 or 2, got {norm!r}")
    adv = fast_gradient_method(
        logits_fn, tf.constant(x), labels if targets is None else targets, eps, norm,
        targeted=targets is not None, clip_min=clip_min, clip_max=clip_max,
    ).numpy()
    params = {"eps": eps, "norm": _norm_name(norm), "clip_min": clip_min, "clip_max": clip_max}
    return adv, _result("fgsm", logits_fn, x, adv, labels, targets, params)


def pgd(
    logits_fn: LogitsFn,
    images: np.ndarray,
    labels: np.ndarray,
    eps: float,
    eps_iter: float,
    nb_iter: int,
    *,
    norm: float = np.inf,
    rand_init: bool = True,
    seed: int = 0,
    targets: np.ndarray | None = None,
    clip_min: float = 0.0,
    clip_max: float = 1.0,
    loss: str = "cross_entropy",
) -> tuple[np.ndarray, AttackResult]:
    """Projected gradient descent: `nb_iter` fast-gradient steps of size `eps_iter`, each
    followed by projection onto the `norm`-ball of radius `eps` around the input and onto
    [clip_min, clip_max]. `rand_init` starts at a uniform random point of the ball (seeded).
    `loss`: the ascended objective, "cross_entropy" or "margin" (see the module docstring).
    """
    loss_fn = _loss_fn(loss)
    x, labels, targets = _check_inputs(images, labels, targets, clip_min, clip_max)
    eps = v.check_positive("eps", eps)
    eps_iter = v.check_positive("eps_iter", eps_iter)
    nb_iter = v.check_positive_int("nb_iter", nb_iter)
    if eps_iter > eps:
        raise ValueError(f"eps_iter ({eps_iter}) must be <= eps ({eps})")
    if norm not in (np.inf, 2):
        raise ValueError(f"norm must be np.inf or 2, got {norm!r}")
    adv = projected_gradient_descent(
        logits_fn, tf.constant(x), labels if targets is None else targets, eps, eps_iter,
        nb_iter, norm, targeted=targets is not None, clip_min=clip_min, clip_max=clip_max,
        rand_init=rand_init, seed=int(seed), loss_fn=loss_fn,
    ).numpy()
    params = {"eps": eps, "eps_iter": eps_iter, "nb_iter": nb_iter, "norm": _norm_name(norm),
              "rand_init": bool(rand_init), "seed": int(seed), "loss": loss,
              "clip_min": clip_min, "clip_max": clip_max}
    return adv, _result("pgd", logits_fn, x, adv, labels, targets, params)


def _check_inputs(
    images: np.ndarray, labels: np.ndarray, targets: np.ndarray | None,
    clip_min: float, clip_max: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x = v.check_images(images, clip_min, clip_max)
    labels = v.check_classes("labels", labels, len(x))
    return x, labels, v.check_targets(labels, targets)


def _result(
    name: str, logits_fn: LogitsFn, x: np.ndarray, adv: np.ndarray, labels: np.ndarray,
    targets: np.ndarray | None, params: dict,
) -> AttackResult:
    predicted = np.argmax(np.asarray(logits_fn(tf.constant(adv))), axis=1)
    return AttackResult.from_images(name, x, adv, labels, predicted, targets, params)


def _norm_name(norm: float) -> str:
    return "inf" if norm == np.inf else str(int(norm))
