"""Speed of one JointVAE training step (Sootla 2018 eq. 2.14, Table 3.1; Dupont 2018): TensorFlow
(XLA, graph, eager) against a PyTorch CPU implementation of Dupont's model and loss, in one run.

The step: batch 64 of 32x32x1 digits (the embedded `mnist_5k` digits, resized to 32x32 as
training does), 10 continuous latents + one 10-way relaxed one-hot (tau 0.67), the capacity
objective (gamma 30, C 0 -> 5 nats over 25,000 steps), Adam lr 5e-4; widths of the thesis's
Table 3.1 (`VAEConfig` defaults) or, with `--widths=dupont`, of Dupont's reference code
(encoder convs 32/64/64 and one dense layer of 256, decoder dense 256, transposed convs 32/32).

Variants, timed on one fixed batch:
  tf_xla:    `VAE.train_step` inside Keras' train function (`model.make_train_function()`, what
             `model.fit` and `bin/train` run) with `compile(jit_compile=True)`;
  tf_graph:  the same with `jit_compile=False` (what `configs/mnist_jointvae.flags` runs);
  tf_eager:  `VAE.train_step` called directly, without `tf.function`;
  tf_graph_bf16, tf_xla_bf16: tf_graph / tf_xla with `VAEConfig(mixed_precision=True)`
             (`--mixed_precision`): the encoder's and decoder's convolutions and Dense layers
             compute in bfloat16 (float32 variables); latent heads, likelihood and loss float32;
  ..._fused: `deepvib.training.optimizers.FusedAdam` (one fused Adam kernel per variable, what
             bin/train uses) instead of Keras' Adam;
  ..._loop:  `--steps_per_execution` steps per call of Keras' train function (bin/train's flag
             of that name), e.g. tf_graph_bf16_fused_loop = configs/mnist_jointvae.flags;
  torch_eager: PyTorch (CPU, eager, as users of the reference code run it) re-implementing
             Dupont's `jointvae/models.py` VAE and `training.py` loss at the same widths: sigmoid
             decoder output and `F.binary_cross_entropy` times the pixel count, batch-mean KLs,
             gamma |KL - C| terms, the loss divided by the pixel count before `backward()`, Adam,
             `loss.item()` every step. Skipped, with a message, when torch is not installed
             (`pip install torch==2.13.0+cpu`; torch is not a dependency of deepvib).

Method: every variant is warmed up (XLA compiles), then the variants run in interleaved rounds
(A B C D, A B C D, ...) of `--steps` steps each (`--eager_steps` for tf_eager), so load from
other processes on a shared machine falls on all of them alike; each variant's figure is the
median over rounds of ms per step. The implied 100-epoch time is an extrapolation: 937 steps per
epoch (60,000 // 64) times the median step, no evaluation, input pipeline or checkpoints.

Same computation? Before timing, the script (1) evaluates both implementations' losses at their
own random initialisation on the same batch (mean over draws of the noise), and (2) copies the
TF model's weights into the PyTorch model and compares the noise-free loss (z = posterior mean,
no Gumbel noise) term by term, and the mean loss over draws.

The bfloat16 variants' loss is compared with the float32 model's on the same weights (noise-free
and over the same draws of the noise).

Usage: python benchmarks/bench_vae_step.py [--widths=thesis|dupont] [--rounds=7] [--steps=50]
           [--variants=tf_graph,tf_graph_bf16,tf_graph_bf16_fused_loop,torch_eager]
           [--steps_per_execution=20]
           [--output=benchmarks/results/vae_step.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tf_keras as keras

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from deepvib.data.sources import load_embedded  # noqa: E402
from deepvib.data.transforms import fit_split  # noqa: E402
from deepvib.models import build_model, latents  # noqa: E402
from deepvib.models.vae_config import VAEConfig  # noqa: E402
from deepvib.training import atomic  # noqa: E402
from deepvib.training.optimizers import FusedAdam  # noqa: E402

try:
    import torch
    from torch.nn import functional as F  # noqa: N812
except ImportError:  # torch is only for this benchmark
    torch = None

BATCH = 64
LEARNING_RATE = 5e-4
STEPS_PER_EPOCH = 60_000 // BATCH  # 937
EPOCHS = 100
EPS = 1e-12  # Dupont's guard inside log()
WIDTHS = {
    "thesis": {},  # VAEConfig defaults: Table 3.1
    "dupont": {"encoder_channels": (32, 64, 64), "encoder_dense": (256,), "encoder_linear": 0,
               "decoder_dense": 256, "decoder_channels": (32, 32)},
}


KERAS_VARIANTS = tuple(
    f"tf_{mode}{bf16}{fused}{loop}" for mode in ("xla", "graph") for bf16 in ("", "_bf16")
    for fused in ("", "_fused") for loop in ("", "_loop"))
VARIANTS = (*KERAS_VARIANTS, "tf_eager", "torch_eager")
DEFAULT_VARIANTS = ("tf_xla", "tf_graph", "tf_eager", "tf_graph_bf16", "torch_eager")


def vae_config(widths: str, mixed_precision: bool = False) -> VAEConfig:
    return VAEConfig(model="jointvae", mixed_precision=mixed_precision, **WIDTHS[widths])


def fixed_batch(config: VAEConfig) -> np.ndarray:
    """64 real digits (the embedded set), resized to 32x32 as training does: [64, 32, 32, 1]."""
    split = fit_split(load_embedded("train").take(BATCH), config.input_shape)
    return np.ascontiguousarray(split.images, dtype=np.float32)


# -- TensorFlow ------------------------------------------------------------------------------
def tf_model(config: VAEConfig, jit_compile: bool, fused_adam: bool = False,
             steps_per_execution: int = 1):
    model = build_model(config)
    optimizer = (FusedAdam if fused_adam else keras.optimizers.Adam)(LEARNING_RATE)
    optimizer.build(model.trainable_variables)
    model.compile(optimizer=optimizer, jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    return model


def tf_keras_step(config: VAEConfig, images: np.ndarray, jit_compile: bool,
                  fused_adam: bool = False, steps_per_execution: int = 1) -> Callable:
    """n steps of Keras' train function on one fixed batch (n // steps_per_execution calls,
    at least one); returns the last loss."""
    model = tf_model(config, jit_compile, fused_adam, steps_per_execution)
    iterator = iter(tf.data.Dataset.from_tensors(tf.constant(images)).repeat())
    train_function = model.make_train_function()

    def run(n: int) -> float:
        for _ in range(max(1, n // steps_per_execution)):
            logs = train_function(iterator)
        return float(logs["loss"])

    return run


def keras_variant(name: str, float32: VAEConfig, bf16: VAEConfig, images: np.ndarray,
                  steps_per_execution: int) -> Callable:
    """tf_{xla,graph}[_bf16][_fused][_loop]: XLA or not, mixed precision, `FusedAdam`
    (what bin/train uses) instead of Keras' Adam, and `steps_per_execution` steps per call
    of the train function (`--steps_per_execution` of bin/train)."""
    parts = name.split("_")[1:]
    return tf_keras_step(bf16 if "bf16" in parts else float32, images,
                         jit_compile=parts[0] == "xla", fused_adam="fused" in parts,
                         steps_per_execution=steps_per_execution if "loop" in parts else 1)


def tf_eager_step(config: VAEConfig, images: np.ndarray) -> Callable:
    model = tf_model(config, jit_compile=False)
    batch = tf.constant(images)

    def run(n: int) -> float:
        for _ in range(n):
            logs = model.train_step(batch)
        return float(logs["loss"])

    return run


def tf_terms(model, images: tf.Tensor, noise: bool) -> dict:
    """The model's own objective terms; without noise: z = posterior mean and the relaxed code
    softmax(log q / tau), no Gumbel noise (what `torch_loss(noise=False)` computes)."""
    if noise:
        return model.objective_terms(images, training=True)
    z_posterior, c_posteriors = model.posteriors(images, training=True)
    logits = [latents.categorical_logits(q) for q in c_posteriors]
    codes = [tf.nn.softmax(tf.nn.log_softmax(lg) / model.config.temperature) for lg in logits]
    z = latents._plain(z_posterior).mean()
    likelihood = model.decoder_distribution(tf.concat([z, *codes], axis=-1))
    return {
        "reconstruction_ll": likelihood.log_prob(images),
        "kl_z_per_dim": latents.gaussian_kl_per_dimension(z_posterior),
        "kl_c": tf.add_n([latents.categorical_kl_to_uniform(lg) for lg in logits]),
    }


def tf_loss(model, images: tf.Tensor, noise: bool) -> dict:
    """Loss (nats per image, step 0) and its batch-mean parts, as the model computes them."""
    terms = tf_terms(model, images, noise)
    step = tf.constant(0, tf.int64)
    return {
        "loss": float(model.loss_from_terms(terms, step)),
        "reconstruction": float(-tf.reduce_mean(terms["reconstruction_ll"])),
        "kl_z": float(tf.reduce_mean(tf.reduce_sum(terms["kl_z_per_dim"], axis=-1))),
        "kl_c": float(tf.reduce_mean(terms["kl_c"])),
    }


# -- PyTorch: Dupont's JointVAE at configurable widths ---------------------------------------
def torch_jointvae(config: VAEConfig):
    """Dupont's `jointvae.models.VAE` (encode, reparameterise, decode) with the widths of
    `config`: convs 4x4 stride 2 padding 1, separate mean / log-variance / alpha heads, softmax
    alphas, sigmoid output."""
    nn = torch.nn

    class JointVAE(nn.Module):
        def __init__(self):
            super().__init__()
            convs, channels = [], config.channels
            for out in config.encoder_channels:
                convs += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.ReLU()]
                channels = out
            hidden, width = [], channels * 4 * 4
            for units in config.encoder_dense:
                hidden += [nn.Linear(width, units), nn.ReLU()]
                width = units
            if config.encoder_linear:
                hidden.append(nn.Linear(width, config.encoder_linear))
                width = config.encoder_linear
            self.img_to_features = nn.Sequential(*convs)
            self.features_to_hidden = nn.Sequential(*hidden)
            self.fc_mean = nn.Linear(width, config.continuous_dim)
            self.fc_log_var = nn.Linear(width, config.continuous_dim)
            self.fc_alphas = nn.ModuleList(nn.Linear(width, n) for n in config.discrete_dims)
            dense, width = [], config.continuous_dim + sum(config.discrete_dims)
            if config.decoder_dense:
                dense += [nn.Linear(width, config.decoder_dense), nn.ReLU()]
                width = config.decoder_dense
            self.latent_to_features = nn.Sequential(*dense, nn.Linear(width, 64 * 4 * 4),
                                                    nn.ReLU())
            ups, channels = [], 64
            for out in config.decoder_channels:
                ups += [nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1), nn.ReLU()]
                channels = out
            ups += [nn.ConvTranspose2d(channels, config.channels, 4, stride=2, padding=1),
                    nn.Sigmoid()]
            self.features_to_img = nn.Sequential(*ups)

        def encode(self, x):
            hidden = self.features_to_hidden(self.img_to_features(x).flatten(1))
            alphas = [F.softmax(fc(hidden), dim=1) for fc in self.fc_alphas]
            return self.fc_mean(hidden), self.fc_log_var(hidden), alphas

        def decode(self, codes):
            return self.features_to_img(self.latent_to_features(codes).view(-1, 64, 4, 4))

    return JointVAE()


def capacity_now(c_range: tuple[float, float], iterations: int, step: int,
                 cap: float = math.inf) -> float:
    c_min, c_max = c_range
    return min((c_max - c_min) * step / float(iterations) + c_min, c_max, cap)


def torch_loss(model, config: VAEConfig, x, step: int, noise: bool = True) -> dict:
    """Dupont's `Trainer._loss_function` on one batch: total loss in nats per image and parts.

    noise=False: z = mean and softmax(log(alpha) / tau) (no Gumbel noise), for comparisons."""
    mean, log_var, alphas = model.encode(x)
    z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean) if noise else mean
    codes = [z]
    for alpha in alphas:
        logit = torch.log(alpha + EPS)
        if noise:
            logit = logit - torch.log(-torch.log(torch.rand_like(alpha) + EPS) + EPS)
        codes.append(F.softmax(logit / config.temperature, dim=1))
    recon = model.decode(torch.cat(codes, dim=1))
    pixels = x[0].numel()
    reconstruction = F.binary_cross_entropy(recon.view(-1, pixels), x.view(-1, pixels)) * pixels
    kl_z = torch.sum(torch.mean(-0.5 * (1 + log_var - mean.pow(2) - log_var.exp()), dim=0))
    kl_c = sum(math.log(a.shape[-1]) + torch.mean(torch.sum(a * torch.log(a + EPS), dim=1))
               for a in alphas)
    c_z = capacity_now(config.capacity_z, config.capacity_z_iterations, step)
    c_c = capacity_now(config.capacity_c, config.capacity_c_iterations, step,
                       cap=config.max_discrete_kl)
    loss = (reconstruction + config.gamma_z * torch.abs(c_z - kl_z)
            + config.gamma_c * torch.abs(c_c - kl_c))
    return {"loss": loss, "reconstruction": reconstruction, "kl_z": kl_z, "kl_c": kl_c}


def torch_images(images: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def torch_step(config: VAEConfig, images: np.ndarray) -> Callable:
    """Dupont's `Trainer._train_iteration`: zero_grad, loss / pixels, backward, Adam step,
    `loss.item()`; the step counter starts at 1 as there."""
    model = torch_jointvae(config)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    x = torch_images(images)
    pixels = x[0].numel()
    state = {"step": 0}

    def run(n: int) -> float:
        for _ in range(n):
            state["step"] += 1
            optimizer.zero_grad()
            loss = torch_loss(model, config, x, state["step"])["loss"] / pixels
            loss.backward()
            optimizer.step()
            value = loss.item()
        return value * pixels

    return run


def copy_tf_weights(tf_vae, torch_vae, config: VAEConfig) -> None:
    """TF (NHWC, kernels [in, out]) weights into the PyTorch model (NCHW, weights [out, in])."""
    def dense(layer, target, rows=None, cols=None):
        kernel, bias = (v.numpy() for v in layer.weights)
        kernel = kernel if rows is None else kernel[:, rows]
        bias = bias if rows is None else bias[rows]
        if cols is not None:  # reorder the input features: flattened NHWC -> NCHW
            kernel = kernel[cols]
        target.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        target.bias.copy_(torch.from_numpy(np.ascontiguousarray(bias)))

    def conv(layer, target):  # Conv2D [h, w, in, out] and Conv2DTranspose [h, w, out, in]
        kernel, bias = (v.numpy() for v in layer.weights)
        target.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
        target.bias.copy_(torch.from_numpy(bias))

    chw = np.arange(4 * 4 * 64).reshape(4, 4, 64).transpose(2, 0, 1).reshape(-1)
    k = config.continuous_dim
    with torch.no_grad():
        tf_convs = [la for la in tf_vae.encoder.layers if isinstance(la, keras.layers.Conv2D)]
        tf_dense = [la for la in tf_vae.encoder.layers if isinstance(la, keras.layers.Dense)]
        for layer, target in zip(tf_convs, torch_vae.img_to_features[::2], strict=True):
            conv(layer, target)
        torch_dense = [m for m in torch_vae.features_to_hidden if isinstance(m, torch.nn.Linear)]
        for i, (layer, target) in enumerate(zip(tf_dense, torch_dense, strict=True)):
            dense(layer, target, cols=chw if i == 0 else None)
        head = tf_vae.continuous_posterior.layers[0]
        dense(head, torch_vae.fc_mean, rows=slice(0, k))
        dense(head, torch_vae.fc_log_var, rows=slice(k, 2 * k))
        for tf_head, target in zip(tf_vae.discrete_posteriors, torch_vae.fc_alphas, strict=True):
            dense(tf_head.layers[0], target)
        dec_dense = [la for la in tf_vae.decoder.layers if isinstance(la, keras.layers.Dense)]
        torch_dec = [m for m in torch_vae.latent_to_features if isinstance(m, torch.nn.Linear)]
        for layer, target in zip(dec_dense, torch_dec, strict=True):
            dense(layer, target, rows=chw if target is torch_dec[-1] else None)
        dec_convs = [la for la in tf_vae.decoder.layers
                     if isinstance(la, keras.layers.Conv2DTranspose)]
        torch_convs = [m for m in torch_vae.features_to_img
                       if isinstance(m, torch.nn.ConvTranspose2d)]
        for layer, target in zip(dec_convs, torch_convs, strict=True):
            conv(layer, target)


def mean_and_stderr(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values),
            "stderr": statistics.stdev(values) / math.sqrt(len(values))}


def seeded_losses(model, images: tf.Tensor, draws: int) -> list[float]:
    """The loss over `draws` seeded draws of the noise (the same draws for any model)."""
    losses = []
    for seed in range(draws):
        keras.utils.set_random_seed(seed)
        losses.append(tf_loss(model, images, noise=True)["loss"])
    return losses


def bf16_check(config: VAEConfig, tf_vae, images: tf.Tensor, draws: int) -> dict:
    """The mixed-precision model's loss on the float32 model's weights: noise-free terms, and
    the largest relative difference of the loss over the same seeded draws of the noise."""
    mixed = build_model(dataclasses.replace(config, mixed_precision=True))
    mixed.set_weights(tf_vae.get_weights())
    f32, bf16 = seeded_losses(tf_vae, images, draws), seeded_losses(mixed, images, draws)
    return {"noise_free": {"float32": tf_loss(tf_vae, images, noise=False),
                           "bf16": tf_loss(mixed, images, noise=False)},
            "same_noise_max_relative_difference": max(
                abs(a - b) / abs(a) for a, b in zip(f32, bf16, strict=True)),
            "same_noise_mean": {"float32": statistics.fmean(f32), "bf16": statistics.fmean(bf16)}}


def loss_check(config: VAEConfig, images: np.ndarray, draws: int) -> dict:
    """Losses (nats per image, step 0) of both implementations on the same batch."""
    tf_vae = build_model(config)
    x_tf = tf.constant(images)
    result = {"tf_own_init": mean_and_stderr(
        [tf_loss(tf_vae, x_tf, noise=True)["loss"] for _ in range(draws)])}
    result["bf16_same_weights"] = bf16_check(config, tf_vae, x_tf, draws)
    if torch is None:
        return result
    x_torch = torch_images(images)
    torch_vae = torch_jointvae(config)
    with torch.no_grad():
        result["torch_own_init"] = mean_and_stderr(
            [float(torch_loss(torch_vae, config, x_torch, 0)["loss"]) for _ in range(draws)])
        copy_tf_weights(tf_vae, torch_vae, config)
        parts = torch_loss(torch_vae, config, x_torch, 0, noise=False)
        result["noise_free_same_weights"] = {
            "tf": tf_loss(tf_vae, x_tf, noise=False),
            "torch": {name: float(v) for name, v in parts.items()},
        }
        result["torch_same_weights"] = mean_and_stderr(
            [float(torch_loss(torch_vae, config, x_torch, 0)["loss"]) for _ in range(draws)])
    result["tf_same_weights"] = result["tf_own_init"]
    return result


# -- timing -----------------------------------------------------------------------------------
def interleaved(variants: dict[str, tuple[Callable, int]], rounds: int, warmup: int) -> dict:
    """Warm each variant up (first call timed: XLA compiles there), then `rounds` rounds of
    every variant in turn; wall-clock and process CPU (all threads) ms per step of every round."""
    first_call = {}
    per_round = {name: [] for name in variants}
    cpu_per_round = {name: [] for name in variants}
    for name, (run, _) in variants.items():
        start = time.perf_counter()
        run(1)
        first_call[name] = time.perf_counter() - start
        if warmup:
            run(warmup)
    for _ in range(rounds):
        for name, (run, steps) in variants.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            run(steps)
            per_round[name].append(1e3 * (time.perf_counter() - start) / steps)
            cpu_per_round[name].append(1e3 * (time.process_time() - cpu_start) / steps)
    return {"first_call_s": first_call, "ms_per_step_rounds": per_round,
            "cpu_ms_per_step_rounds": cpu_per_round}


def set_threads(threads: int) -> None:
    """0: the frameworks' defaults (one thread per core); else `threads` intra-op threads and
    one inter-op thread in both. Must run before TensorFlow executes anything."""
    if threads == 0:
        return
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    if torch is not None:
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor()


def thread_settings() -> dict:
    settings = {
        "os_cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "omp_wait_policy_env": os.environ.get("OMP_WAIT_POLICY"),
    }
    if torch is not None:
        settings["torch_num_threads"] = torch.get_num_threads()
        settings["torch_num_interop_threads"] = torch.get_num_interop_threads()
    return settings


def round_ratios(timings: dict, base: str, name: str, key: str) -> dict:
    """How many times faster `name` is than `base`: the ratio of the medians (wall), the median
    of the per-round ratios (each round's `base` time over its `name` time, measured moments
    apart under the same load) and the ratio of the median CPU times."""
    wall, cpu = timings["ms_per_step_rounds"], timings["cpu_ms_per_step_rounds"]
    return {
        f"speedup_{key}": statistics.median(wall[base]) / statistics.median(wall[name]),
        f"speedup_{key}_round_median": statistics.median(
            b / v for b, v in zip(wall[base], wall[name], strict=True)),
        f"cpu_speedup_{key}": statistics.median(cpu[base]) / statistics.median(cpu[name]),
    }


def markdown(result: dict) -> str:
    def ratio(r, key):
        return f"{r[key]:.2f}x" if key in r else "n/a"

    lines = ["| variant | median ms / step | min-max over rounds | CPU ms / step (median) "
             "| torch / variant: wall (median of per-round ratios) | torch / variant: CPU "
             "| tf_graph / variant: wall (per-round) | tf_graph / variant: CPU "
             "| implied 100 epochs (min) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['variant']} | {r['median_ms']:.2f} | {r['min_ms']:.2f}-"
                     f"{r['max_ms']:.2f} | {r['median_cpu_ms']:.2f} | "
                     f"{ratio(r, 'speedup_vs_torch_round_median')} | "
                     f"{ratio(r, 'cpu_speedup_vs_torch')} | "
                     f"{ratio(r, 'speedup_vs_tf_graph_round_median')} | "
                     f"{ratio(r, 'cpu_speedup_vs_tf_graph')} | "
                     f"{r['implied_100_epochs_min']:.1f} |")
    return "\n".join(lines)


def loss_lines(check: dict) -> list[str]:
    def fmt(d):
        return f"{d['mean']:.2f} +- {d['stderr']:.2f}"

    lines = [f"loss at init (nats/image, mean +- s.e. over draws): TF own init "
             f"{fmt(check['tf_own_init'])}"]
    bf16 = check["bf16_same_weights"]
    nf = bf16["noise_free"]
    lines.append("bf16 model on the float32 weights, noise-free (float32 / bf16): " + ", ".join(
        f"{k} {nf['float32'][k]:.4f} / {nf['bf16'][k]:.4f}" for k in nf["float32"])
        + f"; same noise draws: max relative loss difference "
          f"{bf16['same_noise_max_relative_difference']:.2e}")
    if "torch_own_init" in check:
        lines[0] += f"; PyTorch own init {fmt(check['torch_own_init'])}"
        tf_nf, th_nf = (check["noise_free_same_weights"][k] for k in ("tf", "torch"))
        parts = ", ".join(f"{k} {tf_nf[k]:.4f} / {th_nf[k]:.4f}" for k in tf_nf)
        lines.append(f"same weights, noise-free (TF / PyTorch): {parts}")
        lines.append(f"same weights, mean over draws: TF {fmt(check['tf_same_weights'])}; "
                     f"PyTorch {fmt(check['torch_same_weights'])}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", choices=sorted(WIDTHS), default="thesis")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50, help="steps per round and variant")
    parser.add_argument("--eager_steps", type=int, default=10, help="steps per round, tf_eager")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--steps_per_execution", type=int, default=20,
                        help="steps per train-function call of the *_loop variants")
    parser.add_argument("--loss_draws", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads of both frameworks (0: their defaults)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated, from {','.join(VARIANTS)}")
    parser.add_argument("--output", type=pathlib.Path,
                        default=pathlib.Path("benchmarks/results/vae_step.json"))
    args = parser.parse_args(argv)
    if min(args.rounds, args.steps, args.eager_steps, args.loss_draws) < 2 or args.warmup < 0:
        parser.error("--rounds, --steps, --eager_steps and --loss_draws must be >= 2")
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    if args.steps_per_execution < 1 or args.steps % args.steps_per_execution:
        parser.error("--steps_per_execution must be >= 1 and divide --steps")
    chosen = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown or not chosen:
        parser.error(f"--variants: unknown {unknown}; choose from {','.join(VARIANTS)}")
    set_threads(args.threads)
    keras.utils.set_random_seed(0)
    if torch is None:
        print("torch is not installed: the PyTorch rows are skipped "
              "(pip install torch==2.13.0+cpu to include them)")
    else:
        torch.manual_seed(0)

    config = vae_config(args.widths)
    images = fixed_batch(config)
    check = loss_check(config, images, args.loss_draws)
    mixed = vae_config(args.widths, mixed_precision=True)
    builders = {
        "tf_eager": lambda: tf_eager_step(config, images),
        "torch_eager": lambda: torch_step(config, images),
    }
    if torch is None and "torch_eager" in chosen:
        chosen.remove("torch_eager")
    variants = {
        name: (keras_variant(name, config, mixed, images, args.steps_per_execution)
               if name in KERAS_VARIANTS else builders[name](),
               args.eager_steps if name == "tf_eager" else args.steps)
        for name in chosen
    }
    load_before = os.getloadavg()
    timings = interleaved(variants, args.rounds, args.warmup)
    load_after = os.getloadavg()

    medians = {n: statistics.median(v) for n, v in timings["ms_per_step_rounds"].items()}
    rows = []
    for name, per_round in timings["ms_per_step_rounds"].items():
        row = {"variant": name, "median_ms": medians[name], "min_ms": min(per_round),
               "max_ms": max(per_round),
               "median_cpu_ms": statistics.median(timings["cpu_ms_per_step_rounds"][name]),
               "implied_100_epochs_min": medians[name] * STEPS_PER_EPOCH * EPOCHS / 6e4}
        for base, key in (("torch_eager", "vs_torch"), ("tf_graph", "vs_tf_graph")):
            if base in medians:
                row.update(round_ratios(timings, base, name, key))
        rows.append(row)
    result = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu_model()}",
        "versions": {"tensorflow": tf.__version__,
                     "torch": None if torch is None else torch.__version__},
        "threads_flag": args.threads, "threads": thread_settings(),
        "load_average_1_5_15": {"before": load_before, "after": load_after},
        "widths": args.widths, "config": config.to_dict(), "batch": BATCH,
        "learning_rate": LEARNING_RATE, "steps_per_round": args.steps,
        "eager_steps_per_round": args.eager_steps, "rounds": args.rounds,
        "steps_per_execution_of_loop_variants": args.steps_per_execution,
        "variants": chosen,
        "implied_time_note": f"extrapolation: {STEPS_PER_EPOCH} steps/epoch x {EPOCHS} epochs x "
                             "median ms/step; no evaluation, input pipeline or checkpoints",
        "loss_check": check, "rows": rows, **timings,
    }
    atomic.write_text(str(args.output), json.dumps(result, indent=2) + "\n")

    print(f"machine: {result['machine']}; TF {tf.__version__}, torch "
          f"{result['versions']['torch']}; threads {result['threads']}")
    print(f"load average (1/5/15 min) before {load_before}, after {load_after}")
    print(f"JointVAE step, widths={args.widths}, batch {BATCH}; {args.rounds} interleaved rounds "
          f"of {args.steps} steps ({args.eager_steps} for tf_eager)")
    print(*loss_lines(check), sep="\n")
    print("first call (s, XLA compiles here): "
          + ", ".join(f"{k} {v:.1f}" for k, v in timings["first_call_s"].items()))
    print()
    print(markdown(result))
    print(f"\nimplied 100 epochs = {STEPS_PER_EPOCH} x {EPOCHS} x median step (extrapolation)")


if __name__ == "__main__":
    main()
