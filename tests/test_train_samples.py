"""`--train_samples=S`: the VIB training loss is the mean over S reparameterised samples of the
cross-entropy, plus beta * KL (the authors' JAX remake), checked by hand on a tiny model with
fixed weights and fixed noise."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from deepvib.models import ModelConfig, build_model

IMAGES = np.random.default_rng(0).uniform(size=(5, 28, 28, 1)).astype(np.float32)
LABELS = np.array([0, 1, 1, 0, 1])
BETA = 0.3


def _log_softmax(a):
    a = a - a.max(-1, keepdims=True)
    return a - np.log(np.exp(a).sum(-1, keepdims=True))


class FixedNoise:
    """Replaces posterior sampling with mean + std * eps for a fixed eps [S, B, K]."""

    def __init__(self, eps):
        self.eps = tf.constant(eps, tf.float32)
        self.calls = []

    def __call__(self, posterior, num_samples):
        self.calls.append(num_samples)
        return posterior.mean() + posterior.stddev() * self.eps[:num_samples]


def tiny(samples):
    config = ModelConfig(model="vib", bottleneck_dim=2, beta=BETA, eval_samples=3,
                         train_samples=samples, hidden_units=(3,), input_scaling="unit",
                         num_classes=2, label_entropy_bits=1.0)
    model = build_model(config)
    rng = np.random.default_rng(7)
    for layer in (model.trunk.layers[-1], model.posterior_layer.layers[0], model.decoder):
        layer.set_weights([0.05 * rng.standard_normal(w.shape).astype(np.float32)
                           for w in layer.get_weights()])
    w, b = model.posterior_layer.layers[0].get_weights()
    b[2:] = 5.0  # std = softplus(0) = 0.69: samples far apart, so S matters
    model.posterior_layer.layers[0].set_weights([w, b])
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    return model


def hand_loss(model, eps):
    (w1, b1), (w2, b2), (w3, b3) = (
        layer.get_weights()
        for layer in (model.trunk.layers[-1], model.posterior_layer.layers[0], model.decoder))
    h = np.maximum(IMAGES.reshape(5, -1) @ w1 + b1, 0.0)
    params = h @ w2 + b2
    mu, sigma = params[:, :2], np.log1p(np.exp(params[:, 2:] - 5.0))
    kl = 0.5 * np.sum(mu**2 + sigma**2 - 1.0 - np.log(sigma**2), axis=1)
    z = mu + sigma * eps  # [S, B, K]
    ce = -np.take_along_axis(_log_softmax(z @ w3 + b3), LABELS[None, :, None], -1)[..., 0]
    return ce.mean(axis=0).mean() + BETA * kl.mean(), ce


@pytest.mark.parametrize("samples", [1, 4])
def test_train_samples_loss_is_the_mean_cross_entropy_over_samples_plus_beta_kl(samples):
    eps = np.random.default_rng(samples).standard_normal((samples, 5, 2)).astype(np.float32)
    model = tiny(samples)
    noise = FixedNoise(eps)
    model.posterior_samples = noise
    logs = model.train_step((tf.constant(IMAGES), tf.constant(LABELS)))
    expected, per_sample_ce = hand_loss(model, eps)
    assert noise.calls == [samples]
    np.testing.assert_allclose(float(logs["loss"]), expected, rtol=1e-5)
    if samples > 1:  # the samples really differ: one of them alone gives another loss
        single = per_sample_ce[0].mean() + BETA * (expected - per_sample_ce.mean(0).mean()) / BETA
        assert abs(single - expected) > 1e-3


def test_train_samples_must_be_positive():
    with pytest.raises(ValueError, match="train_samples must be >= 1"):
        ModelConfig(train_samples=0)


# --------------------------------------------------------- kl_estimator="sampled"
def sampled(samples):
    model = tiny(samples)
    model.config = dataclasses.replace(model.config, kl_estimator="sampled")
    return model


def hand_sampled_loss(model, eps, head_bias=None):
    """Float64: mean over samples and examples of CE + beta (log p(z|x) - log r(z)) at
    z = mu + sigma eps, optionally with another posterior-head bias."""
    (w1, b1), (w2, b2), (w3, b3) = (
        [w.astype(np.float64) for w in layer.get_weights()]
        for layer in (model.trunk.layers[-1], model.posterior_layer.layers[0], model.decoder))
    b2 = b2 if head_bias is None else head_bias
    h = np.maximum(IMAGES.reshape(5, -1).astype(np.float64) @ w1 + b1, 0.0)
    params = h @ w2 + b2
    mu, sigma = params[:, :2], np.log1p(np.exp(params[:, 2:] - 5.0))
    z = mu + sigma * eps  # [S, B, K]
    log_q = np.sum(-0.5 * ((z - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi), -1)
    log_r = np.sum(-0.5 * z**2 - 0.5 * np.log(2 * np.pi), -1)
    ce = -np.take_along_axis(_log_softmax(z @ w3 + b3), LABELS[None, :, None], -1)[..., 0]
    return float(np.mean(ce + BETA * (log_q - log_r)))


@pytest.mark.parametrize("samples", [1, 4])
def test_sampled_kl_loss_is_the_mean_of_ce_plus_beta_log_density_ratio(samples):
    eps = np.random.default_rng(10 + samples).standard_normal((samples, 5, 2)).astype(np.float32)
    model = sampled(samples)
    noise = FixedNoise(eps)
    model.posterior_samples = noise
    logs = model.train_step((tf.constant(IMAGES), tf.constant(LABELS)))
    assert noise.calls == [samples]  # the KL is estimated at the training samples themselves
    expected = hand_sampled_loss(model, eps.astype(np.float64))
    np.testing.assert_allclose(float(logs["loss"]), expected, rtol=1e-5)
    analytic, _ = hand_loss(model, eps)  # the same draws give another loss analytically
    assert abs(expected - analytic) > 1e-3
    # What is reported as I(Z;X) stays the analytic bound, not the noisy estimate.
    mu_sigma_kl = (analytic - _ce_mean(model, eps)) / BETA
    np.testing.assert_allclose(float(logs["kl_nats"]), mu_sigma_kl, rtol=1e-4)


def _ce_mean(model, eps):
    _, ce = hand_loss(model, eps)
    return ce.mean(axis=0).mean()


def test_sampled_kl_gradient_flows_through_the_samples_and_the_density():
    """One SGD step (lr 1) moves the posterior head's bias by minus the gradient of the hand
    loss, taken here by central differences in float64 with the noise held fixed (so z moves
    with mu and sigma, as a reparameterised sample does)."""
    eps = np.random.default_rng(3).standard_normal((4, 5, 2))
    model = sampled(4)
    model.posterior_samples = FixedNoise(eps.astype(np.float32))
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    before = model.posterior_layer.layers[0].get_weights()[1].astype(np.float64)
    h = 1e-5
    numeric = np.array([(hand_sampled_loss(model, eps, before + h * e)
                         - hand_sampled_loss(model, eps, before - h * e)) / (2 * h)
                        for e in np.eye(4)])
    model.train_step((tf.constant(IMAGES), tf.constant(LABELS)))
    step = before - model.posterior_layer.layers[0].get_weights()[1]
    np.testing.assert_allclose(step, numeric, rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("covariance, dim", [("diag", 3), ("full", 2)])
def test_the_sampled_kl_averages_to_the_analytic_kl(covariance, dim):
    tf.keras.utils.set_random_seed(4)
    config = ModelConfig(model="vib", bottleneck_dim=dim, covariance=covariance,
                         hidden_units=(8,), num_classes=3, kl_estimator="sampled")
    model = build_model(config)
    posterior = model.posterior(tf.constant(IMAGES))
    n = 20000
    draws = model.sampled_kl_to_prior(posterior, posterior.sample(n, seed=5)).numpy()
    estimate, standard_error = draws.mean(axis=0), draws.std(axis=0) / np.sqrt(n)
    analytic = model.kl_to_prior(posterior).numpy()
    assert analytic.shape == estimate.shape == (5,) and np.all(analytic > 0.05)
    assert np.all(np.abs(estimate - analytic) < 5 * standard_error), (estimate, analytic)


def test_kl_estimator_must_be_known():
    with pytest.raises(ValueError, match="kl_estimator must be one of"):
        ModelConfig(kl_estimator="mc")
