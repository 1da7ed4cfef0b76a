"""The analytic KL[p(z|x) || r(z)] of both posterior heads agrees with Monte Carlo and with an
independent closed form, and the heads' samples have the stated moments."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from deepvib.models.heads import STD_SHIFT, posterior_head, standard_normal_prior

tfd = tfp.distributions


def _softplus(x):
    return np.log1p(np.exp(x))


def _head(k, covariance, features):
    head = posterior_head(k, covariance)
    head(features)
    dense = head.layers[0]
    rng = np.random.default_rng(0)
    dense.set_weights([0.5 * rng.standard_normal(w.shape).astype(np.float32)
                       for w in dense.get_weights()])
    return head, head(features)


def test_diagonal_head_analytic_kl_matches_closed_form_and_monte_carlo():
    k = 6
    features = tf.constant(np.random.default_rng(1).standard_normal((3, 5)), tf.float32)
    head, posterior = _head(k, "diag", features)
    prior = standard_normal_prior(k)
    analytic = tfd.kl_divergence(posterior, prior).numpy()

    params = head.layers[0](features).numpy()
    mu, rho = params[:, :k], params[:, k:]
    sigma = _softplus(rho - STD_SHIFT)
    closed_form = 0.5 * np.sum(mu**2 + sigma**2 - 1.0 - np.log(sigma**2), axis=1)
    np.testing.assert_allclose(analytic, closed_form, rtol=1e-4)

    z = posterior.sample(200_000, seed=7)
    mc = tf.reduce_mean(posterior.log_prob(z) - prior.log_prob(z), axis=0).numpy()
    np.testing.assert_allclose(mc, analytic, rtol=0.02, atol=0.02)
    np.testing.assert_allclose(tf.math.reduce_std(z, axis=0).numpy(), sigma, rtol=0.02)
    np.testing.assert_allclose(tf.reduce_mean(z, axis=0).numpy(), mu, atol=0.01)


def _appendix_b_cholesky(params, k):
    """chol(Sigma) from the head's K(K+3)/2 outputs, built here by hand: softplus on the
    diagonal (+1e-5), the rest as is, laid out as TFP's documented `fill_triangular`
    ([x1..x3] -> [[x3, 0], [x2, x1]]; [x1..x6] -> [[x4, 0, 0], [x6, x5, 0], [x3, x2, x1]])."""
    g = params[:, k:]
    if k == 2:
        rows = [[_softplus(g[:, 2]), 0 * g[:, 0]], [g[:, 1], _softplus(g[:, 0])]]
    else:
        zero = 0 * g[:, 0]
        rows = [[_softplus(g[:, 3]), zero, zero], [g[:, 5], _softplus(g[:, 4]), zero],
                [g[:, 2], g[:, 1], _softplus(g[:, 0])]]
    chol = np.stack([np.stack(row, axis=-1) for row in rows], axis=1)
    return chol + 1e-5 * np.eye(k)


@pytest.mark.parametrize("k", [2, 3])
def test_full_covariance_head_analytic_kl_matches_closed_form_and_monte_carlo(k):
    features = tf.constant(np.random.default_rng(2).standard_normal((4, 5)), tf.float32)
    head, posterior = _head(k, "full", features)
    prior = standard_normal_prior(k)
    analytic = tfd.kl_divergence(posterior, prior).numpy()

    # Independent closed form from the head's raw parameters (Appendix B), not from the
    # distribution's own scale: KL = 0.5 (tr S + mu'mu - k - log|S|), S = L L'.
    params = head.layers[0](features).numpy().astype(np.float64)
    assert params.shape == (4, k * (k + 3) // 2)
    mu, chol = params[:, :k], _appendix_b_cholesky(params, k)
    off_diagonal = chol[:, np.tril_indices(k, -1)[0], np.tril_indices(k, -1)[1]]
    assert np.abs(off_diagonal).min() > 0.05  # the off-diagonal parameters are non-trivial
    np.testing.assert_allclose(posterior.mean().numpy(), mu, rtol=1e-5, atol=1e-6)
    cov = chol @ np.transpose(chol, (0, 2, 1))
    closed_form = 0.5 * (
        np.trace(cov, axis1=1, axis2=2) + np.sum(mu**2, 1) - k - np.linalg.slogdet(cov)[1]
    )
    np.testing.assert_allclose(analytic, closed_form, rtol=1e-4, atol=1e-5)

    z = posterior.sample(200_000, seed=11)
    mc = tf.reduce_mean(posterior.log_prob(z) - prior.log_prob(z), axis=0).numpy()
    np.testing.assert_allclose(mc, analytic, rtol=0.02, atol=0.02)
    # The samples' covariance has the off-diagonal terms the parameters ask for.
    centered = z.numpy() - mu
    empirical_cov = np.einsum("sbi,sbj->bij", centered, centered) / len(centered)
    np.testing.assert_allclose(empirical_cov, cov, rtol=0.05, atol=0.01)
    i, j = np.tril_indices(k, -1)
    assert np.abs(cov[:, i, j]).min() > 0.05


def test_unknown_covariance_is_rejected():
    with pytest.raises(ValueError, match="covariance"):
        posterior_head(3, "banded")
