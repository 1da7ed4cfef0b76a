"""The importance-weighted bound on log p(x) of a VAE (Burda et al. 2016), per image, in nats:
log (1/S) sum_s p(x|z_s,c_s) p(z_s) p(c_s) / (q(z_s|x) q(c_s|x)), z_s ~ q(z|x), c_s ~ q(c|x)
(the exact categorical, hard codes, as at evaluation). One sample is an unbiased estimate of
the ELBO; the bound rises towards log p(x) with more samples.
"""

from __future__ import annotations

import math

import tensorflow as tf

from deepvib.models import latents


def log_importance_weights(model, images: tf.Tensor, num_samples: int) -> tf.Tensor:
    """log [p(x|z,c) p(z) p(c) / (q(z|x) q(c|x))] for `num_samples` draws per image, [S, B].

    z from q(z|x), each c from the exact categorical q(c|x) (hard codes, as at evaluation).
    """
    z_posterior, c_posteriors = model.posteriors(images)
    z_posterior = getattr(z_posterior, "tensor_distribution", z_posterior)
    z = z_posterior.sample(num_samples)  # [S, B, K]
    log_w = model.prior.log_prob(z) - z_posterior.log_prob(z)
    codes = [z]
    for q in c_posteriors:
        logits = latents.categorical_logits(q)
        one_hot = latents.sample_one_hot(logits, num_samples)  # [S, B, n]
        log_q = tf.reduce_sum(one_hot * tf.nn.log_softmax(logits), axis=-1)
        log_w += -math.log(logits.shape[-1]) - log_q
        codes.append(one_hot)
    likelihood = model.decoder_distribution(tf.concat(codes, axis=-1))
    return log_w + likelihood.log_prob(images)


def iwae_bound(model, images: tf.Tensor, num_samples: int) -> tf.Tensor:
    """The importance-weighted bound on log p(x) (Burda et al. 2016), per image, [B], nats.

    One sample gives an unbiased estimate of the ELBO; the bound rises towards log p(x) as the
    number of samples grows.
    """
    log_w = log_importance_weights(model, images, num_samples)
    return tf.reduce_logsumexp(log_w, axis=0) - math.log(num_samples)
