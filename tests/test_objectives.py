"""Training objectives against hand computations on tiny fixed models."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from deepvib.models import ModelConfig, build_model, objectives
from deepvib.models.heads import STD_SHIFT

IMAGES = np.random.default_rng(0).uniform(size=(5, 28, 28, 1)).astype(np.float32)
LABELS = np.array([0, 1, 1, 0, 1], np.int64)


def _softplus(x):
    return np.log1p(np.exp(x))


def _log_softmax(a):
    a = a - a.max(-1, keepdims=True)
    return a - np.log(np.exp(a).sum(-1, keepdims=True))


def _tiny_vib(beta, log_sigma_bias):
    """Two hidden units, K=2, two classes; fixed weights; posterior std set by one bias."""
    config = ModelConfig(
        model="vib", bottleneck_dim=2, beta=beta, eval_samples=3, hidden_units=(2,),
        input_scaling="unit", num_classes=2, label_entropy_bits=1.0,
    )
    model = build_model(config)
    rng = np.random.default_rng(42)
    for layer in (model.trunk.layers[-1], model.posterior_layer.layers[0], model.decoder):
        layer.set_weights([0.05 * rng.standard_normal(w.shape).astype(np.float32)
                           for w in layer.get_weights()])
    w, b = model.posterior_layer.layers[0].get_weights()
    b[2:] = log_sigma_bias
    model.posterior_layer.layers[0].set_weights([w, b])
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # lr 0: the step leaves weights alone
    return model


def _hand_forward(model):
    (w1, b1), (w2, b2), (w3, b3) = (
        layer.get_weights()
        for layer in (model.trunk.layers[-1], model.posterior_layer.layers[0], model.decoder)
    )
    x = IMAGES.reshape(len(IMAGES), -1)
    h = np.maximum(x @ w1 + b1, 0.0)
    params = h @ w2 + b2
    mu, sigma = params[:, :2], _softplus(params[:, 2:] - STD_SHIFT)
    kl = 0.5 * np.sum(mu**2 + sigma**2 - 1.0 - np.log(sigma**2), axis=1)
    ce_at_mean = -_log_softmax(mu @ w3 + b3)[np.arange(len(LABELS)), LABELS]
    return kl, ce_at_mean


@pytest.mark.parametrize("beta", [0.0, 1e-3, 0.5])
def test_train_step_loss_equals_hand_computation(beta):
    # std ~ 1e-4: the single reparameterised sample sits on the mean to 4 digits, so the
    # cross-entropy is hand-computable; the KL is analytic and exact whatever the sample.
    model = _tiny_vib(beta, log_sigma_bias=STD_SHIFT + math.log(math.expm1(1e-4)))
    logs = model.train_step((tf.constant(IMAGES), tf.constant(LABELS)))
    kl, ce = _hand_forward(model)
    np.testing.assert_allclose(float(logs["kl_nats"]), kl.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(logs["ce"]), ce.mean(), rtol=1e-3)
    np.testing.assert_allclose(float(logs["loss"]), ce.mean() + beta * kl.mean(), rtol=1e-3)
    np.testing.assert_allclose(float(logs["kl_bits"]), kl.mean() / math.log(2), rtol=1e-5)
    np.testing.assert_allclose(
        float(logs["izy_lower_bits"]), 1.0 - float(logs["ce"]) / math.log(2), rtol=1e-6
    )


def test_beta_zero_reduces_to_plain_cross_entropy():
    model = _tiny_vib(0.0, log_sigma_bias=0.0)  # real posterior noise this time
    logs = model.train_step((tf.constant(IMAGES), tf.constant(LABELS)))
    assert float(logs["kl_nats"]) > 1e-3  # the KL is there, it just does not count
    np.testing.assert_allclose(float(logs["loss"]), float(logs["ce"]), rtol=1e-6)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_gradient_flows_through_the_sample_to_the_posterior_scale():
    """d CE / d rho by the chain rule through z = mu + softplus(rho - 5) * eps, by hand."""
    model = _tiny_vib(0.0, log_sigma_bias=STD_SHIFT)  # std = softplus(0), large noise
    with tf.GradientTape() as tape:
        posterior = model.posterior(tf.constant(IMAGES))
        z = posterior.sample()
        ce = objectives.cross_entropy(tf.constant(LABELS), model.decoder(z))
    grad_w, grad_b = tape.gradient(ce, model.posterior_layer.layers[0].trainable_variables)
    (w1, b1), (w2, b2), (w3, b3) = (
        layer.get_weights()
        for layer in (model.trunk.layers[-1], model.posterior_layer.layers[0], model.decoder)
    )
    h = np.maximum(IMAGES.reshape(len(IMAGES), -1) @ w1 + b1, 0.0)
    params = h @ w2 + b2
    mu, rho = params[:, :2], params[:, 2:]
    eps = (z.numpy() - mu) / _softplus(rho - STD_SHIFT)  # the draw, recovered
    assert np.abs(eps).max() > 0.1  # real noise
    logits = z.numpy() @ w3 + b3
    dce_dz = (np.exp(_log_softmax(logits)) - np.eye(2)[LABELS]) @ w3.T  # [B, K]
    dce_drho = dce_dz * eps * _sigmoid(rho - STD_SHIFT)
    np.testing.assert_allclose(grad_b.numpy()[2:], dce_drho.sum(0), rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(grad_b.numpy()[:2], dce_dz.sum(0), rtol=1e-3, atol=1e-7)
    assert np.abs(dce_drho.sum(0)).min() > 1e-4  # reparameterisation reaches rho


def test_train_step_follows_the_analytic_gradient_of_beta_kl():
    """With a zero decoder kernel the cross-entropy does not depend on z, so one SGD step
    (lr 1) moves the encoder's output layer by exactly -beta * d mean(KL) / d params."""
    beta = 0.5
    model = _tiny_vib(beta, log_sigma_bias=STD_SHIFT + 0.3)
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    kernel, bias = model.decoder.get_weights()
    model.decoder.set_weights([np.zeros_like(kernel), bias])
    (w1, b1), (w2, b2) = (layer.get_weights() for layer in
                          (model.trunk.layers[-1], model.posterior_layer.layers[0]))
    h = np.maximum(IMAGES.reshape(len(IMAGES), -1) @ w1 + b1, 0.0).astype(np.float64)
    params = h @ w2 + b2
    mu, rho = params[:, :2], params[:, 2:]
    sigma = _softplus(rho - STD_SHIFT)
    # KL = 0.5 sum(mu^2 + sigma^2 - 1 - log sigma^2): dKL/dmu = mu,
    # dKL/drho = (sigma - 1 / sigma) * softplus'(rho - 5); the loss averages over the batch.
    d_params = beta / len(IMAGES) * np.concatenate(
        [mu, (sigma - 1.0 / sigma) * _sigmoid(rho - STD_SHIFT)], axis=1)
    model.train_step((tf.constant(IMAGES), tf.constant(LABELS)))
    new_w2, new_b2 = model.posterior_layer.layers[0].get_weights()
    assert np.abs(d_params[:, 2:]).min() > 1e-3  # the scale parameters get a real gradient
    np.testing.assert_allclose(new_b2 - b2, -d_params.sum(0), rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(new_w2 - w2, -(h.T @ d_params), rtol=1e-3, atol=1e-7)


def test_s_sample_error_is_the_error_of_the_mean_of_softmaxes():
    """A 1-D posterior N(1, 2^2) and logits (0, 4z): one sample picks class 1 with
    probability Phi(1/2) = 0.69, while the mean of 200 softmaxes, E[sigmoid(4z)] = 0.66 +- 0.03,
    picks it always. `evaluate` (test_step) must report the S-sample error of the mean of
    softmaxes (0 with labels 1, 1 with labels 0), not that of one sample."""
    samples, mu, sigma, gain = 200, 1.0, 2.0, 4.0
    config = ModelConfig(model="vib", bottleneck_dim=1, beta=0.0, eval_samples=samples,
                         hidden_units=(1,), input_scaling="unit", num_classes=2,
                         label_entropy_bits=1.0)
    model = build_model(config)
    model.trunk.layers[-1].set_weights([np.zeros((784, 1), np.float32), np.ones(1, np.float32)])
    rho = STD_SHIFT + math.log(math.expm1(sigma))  # softplus(rho - 5) = sigma
    model.posterior_layer.layers[0].set_weights(
        [np.array([[mu, rho]], np.float32), np.zeros(2, np.float32)])
    model.decoder.set_weights([np.array([[0.0, gain]], np.float32), np.zeros(2, np.float32)])
    model.compile()
    # The S -> infinity limit, by quadrature: p(y=1|x) = E[sigmoid(gain z)], z ~ N(mu, sigma^2).
    z = np.linspace(mu - 10 * sigma, mu + 10 * sigma, 20001)
    density = np.exp(-0.5 * ((z - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    p1 = np.sum(_sigmoid(gain * z) * density) * (z[1] - z[0])
    one_shot_error = 0.5 * math.erfc(mu / sigma / math.sqrt(2))  # P(z < 0)
    assert p1 - 0.5 > 5 * 0.5 / math.sqrt(samples) and one_shot_error > 0.25
    images = np.random.default_rng(1).uniform(size=(400, 28, 28, 1)).astype(np.float32)
    for label, expected in ((1, 0.0), (0, 1.0)):  # the mean of softmaxes always picks 1
        labels = np.full(len(images), label, np.int64)
        logs = model.evaluate(images, labels, batch_size=200, verbose=0, return_dict=True)
        assert logs[f"error_{samples}sample"] == expected, logs
        one_shot = one_shot_error if label == 1 else 1.0 - one_shot_error
        spread = math.sqrt(one_shot_error * (1 - one_shot_error) / len(images))
        assert abs(logs["error_1shot"] - one_shot) < 5 * spread


def test_predictive_is_mean_of_softmaxes_not_softmax_of_mean():
    logits = np.array([[[4.0, 0.0]], [[-4.0, 0.0]], [[0.0, 3.0]]], np.float32)  # [S=3, B=1, C=2]
    expected = np.log(np.exp(_log_softmax(logits)).mean(axis=0))
    got = objectives.mean_softmax_log_probs(tf.constant(logits)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    softmax_of_mean_logits = _log_softmax(logits.mean(axis=0))
    assert not np.allclose(got, softmax_of_mean_logits, atol=1e-2)


def test_model_predictive_averages_softmax_over_posterior_samples():
    model = _tiny_vib(1e-3, log_sigma_bias=STD_SHIFT + 1.0)
    images = tf.constant(IMAGES)
    tf.random.set_seed(5)
    got = model.predictive_log_probs(images, num_samples=7).numpy()
    tf.random.set_seed(5)
    samples = model.posterior(images).sample(7)
    probs = tf.nn.softmax(model.decoder(samples)).numpy()  # [7, B, C]
    assert probs.std(axis=0).max() > 1e-3  # samples differ, so the average matters
    np.testing.assert_allclose(np.exp(got), probs.mean(axis=0), rtol=1e-5)
    mean_mode = model.predictive_log_probs(images, num_samples=0).numpy()
    expected = _log_softmax(model.decoder(model.posterior(images).mean()).numpy())
    np.testing.assert_allclose(mean_mode, expected, rtol=1e-5)


def test_confidence_penalty_and_label_smoothing_match_hand_computation():
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]], np.float32)
    labels = np.array([0, 2])
    logp = _log_softmax(logits)
    ce = -logp[np.arange(2), labels]
    entropy = -(np.exp(logp) * logp).sum(-1)
    got = objectives.confidence_penalty_loss(tf.constant(labels), tf.constant(logits), 0.3)
    np.testing.assert_allclose(got.numpy(), ce - 0.3 * entropy, rtol=1e-5)
    target = np.full((2, 3), 0.2 / 3) + 0.8 * np.eye(3)[labels]
    got = objectives.label_smoothing_loss(tf.constant(labels), tf.constant(logits), 0.2)
    np.testing.assert_allclose(got.numpy(), -(target * logp).sum(-1), rtol=1e-6)


def test_deterministic_baseline_step_reports_its_objective():
    config = ModelConfig(model="confidence_penalty", confidence_penalty=0.2, bottleneck_dim=4,
                         hidden_units=(8,), num_classes=2)
    model = build_model(config)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = model.train_step((tf.constant(IMAGES), tf.constant(LABELS)))
    logits = model.logits(tf.constant(IMAGES)).numpy()
    logp = _log_softmax(logits)
    ce = -logp[np.arange(len(LABELS)), LABELS]
    entropy = -(np.exp(logp) * logp).sum(-1)
    np.testing.assert_allclose(float(logs["loss"]), (ce - 0.2 * entropy).mean(), rtol=1e-5)
    np.testing.assert_allclose(float(logs["ce"]), ce.mean(), rtol=1e-5)


def test_moving_average_of_weights_follows_its_definition():
    config = ModelConfig(bottleneck_dim=2, hidden_units=(4,), num_classes=2, ema_decay=0.9)
    model = build_model(config)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    expected = [v.numpy() for v in model.trainable_variables]
    for _ in range(3):
        model.train_step((tf.constant(IMAGES), tf.constant(LABELS)))
        variables = model.trainable_variables
        expected = [0.9 * e + 0.1 * v.numpy() for e, v in zip(expected, variables, strict=True)]
    raw = [v.numpy() for v in model.trainable_variables]
    for e, avg in zip(expected, model.ema_variables, strict=True):
        np.testing.assert_allclose(avg.numpy(), e, rtol=1e-5, atol=1e-7)
    with model.averaged_weights():
        for e, v in zip(expected, model.trainable_variables, strict=True):
            np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-7)
    for r, v in zip(raw, model.trainable_variables, strict=True):
        np.testing.assert_array_equal(v.numpy(), r)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": -1.0}, "beta"),
        ({"bottleneck_dim": 0}, "bottleneck_dim"),
        ({"eval_samples": 0}, "eval_samples"),
        ({"model": "bayes"}, "unknown model"),
        ({"covariance": "banded"}, "covariance"),
    ],
)
def test_bad_model_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)
