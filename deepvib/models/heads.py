"""Stochastic encoder heads p(z|x) and the prior r(z) (Alemi et al. 2017, §3 and Appendix B).

- K-dimensional diagonal Gaussian: mean and std = softplus(rho - 5), as in the authors' code
  (the shift starts training with small posterior noise).
- K-dimensional full-covariance Gaussian through `tfp.layers.MultivariateNormalTriL`:
  chol(Sigma) = diag(softplus(gamma_{K+1:2K})) + subtril(gamma_{2K+1:K(K+3)/2}) (Appendix B).
- r(z) = N(0, I).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

tfd = tfp.distributions
tfpl = tfp.layers

COVARIANCES = ("diag", "full")
STD_SHIFT = 5.0


def diagonal_gaussian(params: tf.Tensor) -> tfd.Distribution:
    loc, rho = tf.split(params, 2, axis=-1)
    return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.nn.softplus(rho - STD_SHIFT))


def posterior_head(bottleneck_dim: int, covariance: str) -> keras.Sequential:
    """Dense parameters followed by a TFP distribution layer; called on features, returns p(z|x).

    The layer's tensor value is one reparameterised sample of z.
    """
    if covariance == "diag":
        return keras.Sequential(
            [
                keras.layers.Dense(2 * bottleneck_dim, name="posterior_params"),
                tfpl.DistributionLambda(diagonal_gaussian, name="diagonal_gaussian"),
            ],
            name="posterior",
        )
    if covariance == "full":
        return keras.Sequential(
            [
                keras.layers.Dense(
                    tfpl.MultivariateNormalTriL.params_size(bottleneck_dim),
                    name="posterior_params",
                ),
                tfpl.MultivariateNormalTriL(bottleneck_dim, name="full_covariance_gaussian"),
            ],
            name="posterior",
        )
    raise ValueError(f"unknown covariance {covariance!r}; choose one of {COVARIANCES}")


def standard_normal_prior(bottleneck_dim: int) -> tfd.Distribution:
    """r(z) = N(0, I_K)."""
    return tfd.MultivariateNormalDiag(
        loc=tf.zeros([bottleneck_dim]), scale_diag=tf.ones([bottleneck_dim])
    )


def posterior_scale(posterior: tfd.Distribution) -> tf.Tensor:
    """The posterior's scale: per-dimension std [B, K] (diag) or Cholesky factor [B, K, K].

    Accepts the tensor-coercible proxy a TFP layer returns as well as a plain distribution.
    """
    posterior = getattr(posterior, "tensor_distribution", posterior)
    if isinstance(posterior, tfd.MultivariateNormalDiag):
        return posterior.stddev()
    return posterior.scale.to_dense()
