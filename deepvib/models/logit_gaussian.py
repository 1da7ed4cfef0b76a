"""The VIB predictive sampled in logit space (Alemi et al. 2017, §4.1.1 and eq. 17's decoder).

The decoder q(y|z) = softmax(W^T z + b) is affine in z, so under the Gaussian posterior
z ~ N(mu(x), Sigma(x)) the logits are Gaussian too:

    l = W^T z + b ~ N(W^T mu + b, W^T Sigma W).

Drawing S logit vectors directly gives the same S-sample predictive
p(y|x) ~= (1/S) sum_s softmax(l_s) as decoding S samples of z, exactly in distribution, at a
fraction of the cost when K > C: C normals per sample instead of K (for K = 256 and C = 10,
12 samples need 120 normals per image instead of 3,072), which is what the 12-sample
Carlini-Wagner attack spends most of its non-matmul time on.

The noise is l - E[l] = eps F with eps ~ N(0, I_r) and a factor F [r, C] of the logit
covariance (F^T F = W^T Sigma W):
  - K <= C: F = diag(sigma) W (diagonal) or L^T W (full covariance, Sigma = L L^T); r = K;
  - K > C:  F = chol(W^T Sigma W)^T, r = C. The C x C covariance and its Cholesky factor are
    computed in float64: W^T Sigma W squares the condition number of diag(sigma) W. It is
    positive definite whenever W has rank C and every sigma_k > 0; a posterior std that
    underflows to 0 in float32 (softplus of a pre-activation below about -100) would make the
    factor NaN for that image.
"""

from __future__ import annotations

import tensorflow as tf

from deepvib.models.heads import posterior_scale


def logit_gaussian(model, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(mean [B, C], factor [B, r, C]) of the logits' Gaussian for images in [0, 1].

    `model` is a `VIBClassifier` (its posterior head and Dense decoder).
    """
    posterior = model.posterior(images)
    mean_z = posterior.mean()
    scale = posterior_scale(posterior)  # [B, K] std (diagonal) or [B, K, K] Cholesky factor
    kernel, bias = model.decoder.kernel, model.decoder.bias  # [K, C], [C]
    mean = tf.matmul(mean_z, kernel) + bias
    return mean, logit_noise_factor(scale, kernel)


def logit_noise_factor(scale: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """F [B, r, C] with F^T F = W^T Sigma W (see the module docstring)."""
    k, c = kernel.shape
    diagonal = scale.shape.rank == 2
    if k <= c:
        if diagonal:
            return scale[:, :, None] * kernel[None]
        return tf.einsum("bji,jc->bic", scale, kernel)  # L^T W
    kernel64 = tf.cast(kernel, tf.float64)
    scale64 = tf.cast(scale, tf.float64)
    if diagonal:
        # sum_k sigma_k^2 W_ki W_kj as one [B, K] x [K, C*C] product.
        outer = tf.reshape(kernel64[:, :, None] * kernel64[:, None, :], [k, c * c])
        covariance = tf.reshape(tf.matmul(tf.square(scale64), outer), [-1, c, c])
    else:
        lw = tf.einsum("bji,jc->bic", scale64, kernel64)
        covariance = tf.matmul(lw, lw, transpose_a=True)
    cholesky = tf.linalg.cholesky(covariance)
    return tf.cast(tf.linalg.matrix_transpose(cholesky), scale.dtype)


def sample_logits(
    mean: tf.Tensor, factor: tf.Tensor, num_samples: int, seed: tf.Tensor
) -> tf.Tensor:
    """[B, S, C] logits: mean + eps F, eps ~ N(0, I_r) drawn statelessly from `seed` ([2] int)."""
    batch, rank = tf.shape(factor)[0], tf.shape(factor)[1]
    eps = tf.random.stateless_normal([batch, num_samples, rank], seed=seed, dtype=factor.dtype)
    return mean[:, None, :] + tf.matmul(eps, factor)


def log_mean_softmax(logits: tf.Tensor, axis: int) -> tf.Tensor:
    """log of the mean over `axis` of softmax(logits)."""
    n = tf.cast(tf.shape(logits)[axis], logits.dtype)
    return tf.reduce_logsumexp(tf.nn.log_softmax(logits), axis=axis) - tf.math.log(n)


class LogitSpacePredictive:
    """images -> log p(y|x) over `num_samples` logit samples (0: z = posterior mean).

    Draws come from stateless normals keyed by (seed, call counter), so a sequence of calls is
    reproducible, differs call to call, and compiles under XLA.
    """

    def __init__(self, model, num_samples: int, seed: int = 0) -> None:
        self.model = model
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.calls = tf.Variable(0, dtype=tf.int64, trainable=False, name="logit_sample_calls")

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        if self.num_samples == 0:
            return self.model.predictive_log_probs(images, 0)
        mean, factor = logit_gaussian(self.model, images)
        counter = self.calls.assign_add(1)
        seed = tf.stack([tf.constant(self.seed, tf.int64), counter])
        return log_mean_softmax(sample_logits(mean, factor, self.num_samples, seed), axis=1)
