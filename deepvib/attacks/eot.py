"""Expectation over Transformation (Athalye et al. 2018) for a predictive with Gaussian logits.

A VIB model's decoder is affine, so given x its logits are Gaussian,
l ~ N(m(x), F(x)^T F(x)) (`deepvib.models.logit_gaussian`), and its predictive is the
expectation p(y|x) = E_eps[softmax(m(x) + eps F(x))], eps ~ N(0, I_r) (Alemi et al. 2017,
section 4.1.1 and eq. 17). A deterministic model is the degenerate case F = 0.

`GaussianLogitsFn` maps images [B, ...] to (m [B, C], F [B, r, C]). On top of it:

- `eot_scores`: the attack objective, log of the S-sample mean softmax. With
  `common=True` (common random numbers) the same S draws are used at every call, so the
  objective is a smooth deterministic function of x and the search cannot profit from a lucky
  draw; otherwise every call draws afresh. Draws are antithetic (eps and -eps), which halves
  the variance of odd terms of the estimate and makes the estimate's two-class decision
  boundary exact when F does not depend on x.
- `expected_probs`: an independent large-sample estimate of p(y|x), the judge of success.
- `sampled_classifier_accuracy`: per image, the probability that the paper's S-sample
  classifier (argmax of one S-sample predictive, S = 12) predicts the label, i.e. its expected
  accuracy over posterior draws.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

GaussianLogitsFn = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]
LogitsFn = Callable[[tf.Tensor], tf.Tensor]

EVAL_BATCH = 100
MAX_DRAWS_PER_CALL = 1000  # bounds the [B, S, C] tensor of the large-sample estimates


def antithetic_normal(num_samples: int, rank: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """[num_samples, rank] standard normals in antithetic pairs (eps, -eps), stateless.

    An odd `num_samples` gets one unpaired draw.
    """
    half = (num_samples + 1) // 2
    eps = tf.random.stateless_normal([half, rank], seed=seed)
    return tf.concat([eps, -eps], axis=0)[:num_samples]


def log_mean_softmax(logits: tf.Tensor, axis: int) -> tf.Tensor:
    """log of the mean over `axis` of softmax(logits)."""
    n = tf.cast(tf.shape(logits)[axis], logits.dtype)
    return tf.reduce_logsumexp(tf.nn.log_softmax(logits), axis=axis) - tf.math.log(n)


def sampled_logits(mean: tf.Tensor, factor: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
    """[B, S, C] logits m + eps F for shared draws eps [S, r]."""
    return mean[:, None, :] + tf.einsum("sr,brc->bsc", eps, factor)


class EOTScores:
    """images -> log (1/S) sum_s softmax(m(x) + eps_s F(x)): the EOT attack objective.

    common=True: eps_1..S are fixed (drawn from `seed` alone), the same for every call and
    every image (common random numbers). common=False: fresh draws at every call, keyed by
    (seed, call counter), reproducible and XLA-compilable. antithetic=False: i.i.d. draws
    instead of (eps, -eps) pairs.
    """

    def __init__(self, gaussian_fn: GaussianLogitsFn, num_samples: int, seed: int = 0,
                 common: bool = True, antithetic: bool = True) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"EOT samples must be an integer >= 1, got {num_samples!r}")
        self.gaussian_fn = gaussian_fn
        self.num_samples = num_samples
        self.seed = int(seed)
        self.common = bool(common)
        self.antithetic = bool(antithetic)
        self.calls = tf.Variable(0, dtype=tf.int64, trainable=False, name="eot_calls")

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        mean, factor = self.gaussian_fn(images)
        counter = (tf.constant(0, tf.int64) if self.common
                   else self.calls.assign_add(1))
        seed = tf.stack([tf.constant(self.seed, tf.int64), counter])
        if self.antithetic:
            eps = antithetic_normal(self.num_samples, _rank(factor), seed)
        else:  # i.i.d. draws: the paper's sampled predictive
            eps = tf.random.stateless_normal([self.num_samples, _rank(factor)], seed=seed)
        return log_mean_softmax(sampled_logits(mean, factor, tf.cast(eps, factor.dtype)), 1)


def _rank(factor: tf.Tensor):
    """r of F [B, r, C]: static when known (XLA needs static shapes), else dynamic."""
    return factor.shape[1] if factor.shape[1] is not None else tf.shape(factor)[1]


def eot_scores(gaussian_fn: GaussianLogitsFn, num_samples: int, seed: int = 0,
               common: bool = True, antithetic: bool = True) -> EOTScores:
    """The EOT objective of `EOTScores` (a `LogitsFn` for the attacks)."""
    return EOTScores(gaussian_fn, num_samples, seed, common, antithetic)


def _gaussian_batches(gaussian_fn: GaussianLogitsFn, images: np.ndarray):
    for i in range(0, len(images), EVAL_BATCH):
        mean, factor = gaussian_fn(tf.constant(images[i : i + EVAL_BATCH], tf.float32))
        yield mean, factor


def expected_probs(gaussian_fn: GaussianLogitsFn, images: np.ndarray, num_samples: int,
                   seed: int) -> np.ndarray:
    """[N, C] estimate of p(y|x) = E[softmax(m + eps F)] from `num_samples` antithetic draws
    (independent of any attack's draws when `seed` differs)."""
    out = []
    for b, (mean, factor) in enumerate(_gaussian_batches(gaussian_fn, images)):
        total = tf.zeros_like(mean, tf.float64)
        for start in range(0, num_samples, MAX_DRAWS_PER_CALL):
            n = min(MAX_DRAWS_PER_CALL, num_samples - start)
            key = tf.constant([seed, b * 10**6 + start], tf.int64)
            eps = antithetic_normal(n, _rank(factor), key)
            probs = tf.nn.softmax(sampled_logits(mean, factor, tf.cast(eps, factor.dtype)))
            total += tf.reduce_sum(tf.cast(probs, tf.float64), axis=1)
        out.append((total / num_samples).numpy())
    return np.concatenate(out)


def sampled_classifier_accuracy(
    gaussian_fn: GaussianLogitsFn, images: np.ndarray, labels: np.ndarray,
    samples_per_draw: int = 12, draws: int = 100, seed: int = 0,
) -> np.ndarray:
    """[N] fraction of `draws` independent `samples_per_draw`-sample predictives whose argmax is
    the label: the expected accuracy of the paper's 12-sample classifier on each image."""
    out = []
    for b, (mean, factor) in enumerate(_gaussian_batches(gaussian_fn, images)):
        eps = tf.random.stateless_normal([draws * samples_per_draw, _rank(factor)],
                                         seed=tf.constant([seed, b], tf.int64))
        logits = sampled_logits(mean, factor, tf.cast(eps, factor.dtype))  # [B, D*S, C]
        probs = tf.reshape(tf.nn.softmax(logits),
                           [tf.shape(mean)[0], draws, samples_per_draw, -1])
        predicted = tf.argmax(tf.reduce_mean(probs, axis=2), axis=-1).numpy()  # [B, D]
        batch_labels = labels[b * EVAL_BATCH : b * EVAL_BATCH + len(predicted)]
        out.append(np.mean(predicted == batch_labels[:, None], axis=1))
    return np.concatenate(out)
