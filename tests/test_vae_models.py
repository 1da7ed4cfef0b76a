"""VAE latents, objectives and bounds against independent computations (Sootla 2018 eq.
2.8-2.14)."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from deepvib.evaluation.cluster_accuracy import best_mapping_accuracy
from deepvib.evaluation.iwae import iwae_bound
from deepvib.models import VAEConfig, build_model, latents, vae_objectives

tfd = tfp.distributions

TINY = dict(image_size=8, encoder_channels=(4,), encoder_dense=(16,), encoder_linear=0,
            decoder_dense=16, decoder_channels=(), continuous_dim=2)


def tiny(model="jointvae", **overrides):
    discrete = (3,) if model == "jointvae" else ()
    config = VAEConfig(model=model, discrete_dims=discrete, **{**TINY, **overrides})
    return build_model(config)


def images(n=6, size=8, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(size=(n, size, size, 1)), tf.float32)


# -- the discrete latent ------------------------------------------------------------------------
def test_categorical_kl_equals_the_direct_sum():
    logits = tf.constant([[0.3, -1.2, 2.0, 0.1], [1.0, 1.0, -3.0, 0.5]])
    q = tf.nn.softmax(logits).numpy()
    direct = (q * np.log(q / 0.25)).sum(axis=-1)
    np.testing.assert_allclose(latents.categorical_kl_to_uniform(logits), direct, rtol=1e-5)
    tfp_kl = tfd.kl_divergence(tfd.Categorical(logits=logits),
                               tfd.Categorical(probs=tf.fill([2, 4], 0.25)))
    np.testing.assert_allclose(latents.categorical_kl_to_uniform(logits), tfp_kl, rtol=1e-5)


def test_categorical_kl_is_zero_for_uniform_and_log_n_for_one_hot():
    np.testing.assert_allclose(latents.categorical_kl_to_uniform(tf.zeros([3, 7])), 0, atol=1e-6)
    one_hot_logits = tf.constant([[60.0, 0, 0, 0, 0]])
    np.testing.assert_allclose(latents.categorical_kl_to_uniform(one_hot_logits), math.log(5),
                               rtol=1e-5)


def test_relaxed_samples_lie_on_the_simplex_and_harden_as_temperature_falls():
    logits = tf.constant([[0.5, -0.3, 0.1, 1.2]] * 500)
    largest = []
    for tau in (2.0, 0.67, 0.05):
        sample = tfd.RelaxedOneHotCategorical(tau, logits=logits).sample(seed=(1, 2)).numpy()
        assert (sample >= 0).all()
        np.testing.assert_allclose(sample.sum(axis=-1), 1.0, rtol=1e-5)
        largest.append(sample.max(axis=-1).mean())
    assert largest[0] < largest[1] < largest[2]
    assert largest[2] > 0.97  # close to one-hot


def test_the_model_relaxes_in_training_and_is_hard_at_evaluation():
    model = tiny()
    x = images()
    _, c_posteriors = model.posteriors(x, training=True)
    relaxed = tf.convert_to_tensor(c_posteriors[0]).numpy()
    assert (relaxed.max(axis=-1) < 1 - 1e-4).any()  # soft in training
    codes = model.mean_codes(x).numpy()[:, model.continuous_dim:]
    assert set(np.unique(codes)) == {0.0, 1.0}
    np.testing.assert_array_equal(codes.sum(axis=-1), 1.0)
    probs = model.latent_mean(x).numpy()[:, model.continuous_dim:]
    np.testing.assert_array_equal(codes.argmax(-1), probs.argmax(-1))


def test_the_latent_mean_on_log_probabilities_is_the_log_of_the_probabilities():
    model = tiny()
    x = images()
    k = model.continuous_dim
    probs = model.latent_mean(x).numpy()
    log_probs = model.latent_mean(x, discrete_code="log_probabilities").numpy()
    np.testing.assert_array_equal(log_probs[:, :k], probs[:, :k])
    np.testing.assert_allclose(log_probs[:, k:], np.log(probs[:, k:]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(log_probs[:, k:]).sum(axis=-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="discrete_code must be one of"):
        model.latent_mean(x, discrete_code="logits")


# -- the continuous latent ----------------------------------------------------------------------
def test_gaussian_kl_per_dimension_matches_closed_form_and_monte_carlo():
    mean = np.array([[0.5, -1.0, 0.0]], np.float32)
    log_var = np.array([[0.2, -0.7, 1.1]], np.float32)
    posterior = latents.gaussian_from_mean_log_variance(tf.constant(np.concatenate(
        [mean, log_var], axis=-1)))
    kl = latents.gaussian_kl_per_dimension(posterior).numpy()
    closed = -0.5 * (1 + log_var - mean**2 - np.exp(log_var))  # Dupont's formula
    np.testing.assert_allclose(kl, closed, rtol=1e-5)
    z = posterior.sample(200000, seed=(3, 4))
    mc = tf.reduce_mean(posterior.log_prob(z) - latents.standard_normal(3).log_prob(z))
    assert abs(float(mc) - closed.sum()) < 0.02


# -- the objectives -----------------------------------------------------------------------------
def test_capacity_schedule_is_c_min_at_step_zero_and_c_max_from_the_stated_iteration():
    def c(step):
        return float(vae_objectives.capacity(step, 1.0, 5.0, 1000))

    assert c(0) == 1.0
    assert c(250) == pytest.approx(2.0)
    assert c(1000) == 5.0 and c(1001) == 5.0 and c(10**6) == 5.0
    assert float(vae_objectives.capacity(10**6, 0.0, 5.0, 1000, cap=math.log(3))) == \
        pytest.approx(math.log(3))


def _hand_terms(model, x):
    terms = model.objective_terms(x, training=True)
    ll = terms["reconstruction_ll"].numpy()
    kl_z = terms["kl_z_per_dim"].numpy().sum(axis=-1)
    kl_c = terms["kl_c"].numpy()
    return terms, ll, kl_z, kl_c


def test_jointvae_loss_equals_a_hand_computation():
    model = tiny(capacity_z=(1.0, 5.0), capacity_z_iterations=100, gamma_z=30.0,
                 capacity_c=(0.0, 5.0), capacity_c_iterations=100, gamma_c=7.0)
    terms, ll, kl_z, kl_c = _hand_terms(model, images())
    for step, c_z, c_c in ((0, 1.0, 0.0), (10, 1.4, 0.5), (50, 3.0, math.log(3))):
        expected = -ll.mean() + 30.0 * abs(kl_z.mean() - c_z) + 7.0 * abs(kl_c.mean() - c_c)
        got = float(model.loss_from_terms(terms, tf.constant(step, tf.int64)))
        assert got == pytest.approx(expected, rel=1e-5), step


def test_capacity_vae_loss_has_no_discrete_term():
    model = tiny("capacity_vae", capacity_z=(0.0, 5.0), capacity_z_iterations=10, gamma_z=3.0)
    terms, ll, kl_z, kl_c = _hand_terms(model, images())
    assert (kl_c == 0).all()
    got = float(model.loss_from_terms(terms, tf.constant(4, tf.int64)))
    assert got == pytest.approx(-ll.mean() + 3.0 * abs(kl_z.mean() - 2.0), rel=1e-5)


def test_vae_loss_is_the_negative_elbo_and_beta_weights_the_kl():
    x = images()
    vae = tiny("vae")
    terms, ll, kl_z, _ = _hand_terms(vae, x)
    assert float(vae.loss_from_terms(terms, tf.constant(0, tf.int64))) == \
        pytest.approx(-(ll - kl_z).mean(), rel=1e-5)
    beta = tiny("beta_vae", beta=4.0)
    terms, ll, kl_z, _ = _hand_terms(beta, x)
    assert float(beta.loss_from_terms(terms, tf.constant(0, tf.int64))) == \
        pytest.approx(-ll.mean() + 4.0 * kl_z.mean(), rel=1e-5)


@pytest.mark.parametrize("scale", [1.0, 12.0])
def test_reconstruction_term_is_the_bernoulli_log_probability_summed_over_pixels(scale):
    """Value and gradient (d/dlogits = x - sigmoid(logits)) by hand, grey levels as soft
    targets, also for saturated logits (|logits| up to ~40)."""
    logits = tf.constant(scale * np.random.default_rng(2).normal(size=(2, 8, 8, 1)), tf.float32)
    x = images(2)
    lg = logits.numpy().astype(np.float64)
    log_p, log_1mp = -np.log1p(np.exp(-lg)), -np.log1p(np.exp(lg))  # log p, log(1 - p)
    p = np.exp(log_p)
    expected = (x.numpy() * log_p + (1 - x.numpy()) * log_1mp).sum(axis=(1, 2, 3))
    with tf.GradientTape() as tape:
        tape.watch(logits)
        log_prob = latents.bernoulli_likelihood(logits).log_prob(x)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-4)
    np.testing.assert_allclose(tape.gradient(log_prob, logits), x.numpy() - p, atol=1e-5)


def test_weight_decay_adds_the_l2_norm_of_the_kernels():
    model = tiny("vae", weight_decay=0.01)
    kernels = [v.numpy() for v in model.trainable_variables if "kernel" in v.name]
    assert len(kernels) >= 4
    expected = 0.01 * sum((k**2).sum() for k in kernels)
    assert float(model.weight_penalty()) == pytest.approx(expected, rel=1e-5)
    assert float(tiny("vae").weight_penalty()) == 0.0


def test_train_step_moves_the_weights_along_the_objective():
    model = tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = images(16)
    data = (x, tf.zeros([16], tf.int64))
    before = float(model.loss_from_terms(model.objective_terms(x, training=False), 0))
    step = tf.function(model.train_step)
    for _ in range(30):
        logs = step(data)
    assert float(logs["capacity_c"]) > 0.0  # C(t) rose with the steps
    assert int(model.optimizer.iterations) == 30
    after = float(model.loss_from_terms(model.objective_terms(x, training=False), 0))
    assert after < before


# -- bounds -------------------------------------------------------------------------------------
def test_iwae_with_one_sample_is_the_elbo_and_more_samples_do_not_lower_it():
    model = tiny()
    tf.random.set_seed(0)
    draws, x = 2000, images(4)
    tiled = tf.tile(x, [draws, 1, 1, 1])  # every image `draws` times, in one batch

    def per_image(values, repeats=draws):
        return tf.reshape(values, [repeats, 4]).numpy().mean(axis=0)

    one = per_image(iwae_bound(model, tiled, 1))
    terms = model.objective_terms(tiled, training=False)
    elbo = per_image(terms["reconstruction_ll"] - tf.reduce_sum(terms["kl_z_per_dim"], -1)
                     - terms["kl_c"])
    np.testing.assert_allclose(one, elbo, rtol=0.01)
    repeats = 50
    many = [per_image(iwae_bound(model, tf.tile(x, [repeats, 1, 1, 1]), k), repeats).mean()
            for k in (1, 10, 100)]
    assert many[0] <= many[1] + 0.05 and many[1] <= many[2] + 0.05
    assert many[2] > many[0]


def test_iwae_bound_is_exact_when_the_posterior_is_the_true_posterior():
    # With p(x|z) independent of z (a decoder that ignores its input) and q(z|x) = p(z), every
    # importance weight equals p(x): one sample is already exact.
    model = tiny("vae")
    for v in model.trainable_variables:
        v.assign(tf.zeros_like(v))  # q(z|x) = N(0, I) = p(z); decoder logits 0
    x = images(3)
    expected = 64 * math.log(0.5)  # every pixel: x log .5 + (1-x) log .5
    np.testing.assert_allclose(iwae_bound(model, x, 1), expected, rtol=1e-5)
    np.testing.assert_allclose(iwae_bound(model, x, 7), expected, rtol=1e-5)


# -- metrics ------------------------------------------------------------------------------------
def test_discrete_accuracy_finds_the_best_one_to_one_mapping():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    categories = np.array([2, 2, 0, 0, 1, 1, 0])  # a permutation, with one mistake
    accuracy, mapping = best_mapping_accuracy(categories, labels, 3, 3)
    assert accuracy == pytest.approx(6 / 7)
    assert mapping == {2: 0, 0: 1, 1: 2}
    accuracy, _ = best_mapping_accuracy(np.zeros(4, int), np.array([0, 1, 2, 3]), 4, 4)
    assert accuracy == 0.25  # one category cannot cover four labels


# -- configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    (dict(image_size=30), "image_size"),
    (dict(encoder_channels=(32, 32)), "encoder convolutions"),
    (dict(discrete_dims=(1,)), ">= 2 values"),
    (dict(model="vae", discrete_dims=(10,)), "jointvae only"),
    (dict(temperature=0.0), "temperature"),
    (dict(capacity_z=(5.0, 1.0)), "C_z"),
    (dict(model="vae", discrete_dims=(), beta=2.0), "beta = 1"),
])
def test_bad_vae_configs_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        VAEConfig(**{"discrete_dims": (10,), **overrides})
