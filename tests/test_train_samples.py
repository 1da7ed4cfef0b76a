"""`--train_samples=S`: the VIB training loss is the mean over S reparameterised samples of the
cross-entropy, plus beta * KL (the authors' JAX remake), checked by hand on a tiny model with
fixed weights and fixed noise."""

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
