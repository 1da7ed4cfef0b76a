"""Per-example training objectives.

- VIB, Alemi et al. 2017 eq. 17: J_IB = E_eps[-log q(y|f(x, eps))] + beta * KL[p(Z|x) || r(Z)].
- Confidence penalty, eq. 4 (Pereyra et al. 2016): H(p(y|y_n), p(y|x_n)) - beta * H(p(y|x_n)).
- Label smoothing: cross-entropy against (1 - eps) * onehot + eps / C.

All functions return one value per example; the caller averages them over the global batch
(`tf.nn.compute_average_loss`), which keeps the loss scaled right under `tf.distribute`.
"""

from __future__ import annotations

import math

import tensorflow as tf

LN2 = math.log(2.0)


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """-log q(y|z) per example (natural log); `logits` may carry leading sample dims."""
    labels = tf.broadcast_to(labels, tf.shape(logits)[:-1])
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def vib_loss(labels: tf.Tensor, logits: tf.Tensor, kl: tf.Tensor, beta: float) -> tf.Tensor:
    """Eq. 17 with one reparameterised sample: CE + beta * KL (nats), per example."""
    return cross_entropy(labels, logits) + beta * kl


def predictive_entropy(logits: tf.Tensor) -> tf.Tensor:
    log_p = tf.nn.log_softmax(logits)
    return -tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1)


def confidence_penalty_loss(labels: tf.Tensor, logits: tf.Tensor, beta: float) -> tf.Tensor:
    """Eq. 4: CE - beta * H(p(y|x)), per example."""
    return cross_entropy(labels, logits) - beta * predictive_entropy(logits)


def label_smoothing_loss(labels: tf.Tensor, logits: tf.Tensor, epsilon: float) -> tf.Tensor:
    """CE against the smoothed target (1 - epsilon) * onehot + epsilon / C, per example."""
    num_classes = tf.shape(logits)[-1]
    target = tf.one_hot(labels, num_classes, dtype=logits.dtype)
    target = (1.0 - epsilon) * target + epsilon / tf.cast(num_classes, logits.dtype)
    return -tf.reduce_sum(target * tf.nn.log_softmax(logits), axis=-1)


def mean_softmax_log_probs(sample_logits: tf.Tensor) -> tf.Tensor:
    """log p(y|x) with p(y|x) = (1/S) sum_s softmax(logits_s): [S, B, C] -> [B, C].

    The predictive of §4.1.1 (the mean of softmaxes, not the softmax of mean logits),
    computed stably in log space.
    """
    num_samples = tf.cast(tf.shape(sample_logits)[0], sample_logits.dtype)
    return tf.reduce_logsumexp(tf.nn.log_softmax(sample_logits), axis=0) - tf.math.log(
        num_samples
    )
