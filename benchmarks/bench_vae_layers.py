"""Where the JointVAE training step's time goes, layer by layer (Sootla 2018 Table 3.1 widths,
batch 64, 32x32x1): each encoder/decoder layer's forward + backward (gradients of its weights,
and of its input except for the first layer, as in training), in float32 and under Keras'
`mixed_bfloat16` policy (what `--mixed_precision` uses), in CPU ms per call.

For the decoder's stride-2 4x4 'same' transposed convolutions it also times the sub-pixel
formulation: a stride-1 3x3 convolution with 4 * C_out channels followed by
`tf.nn.depth_to_space(2)`, the 4x4 kernel rearranged so output pixel (2m + a, 2n + b) gets
exactly the taps Conv2DTranspose gives it (phase 0 reads input offsets -1, 0 with kernel taps
3, 1; phase 1 offsets 0, +1 with taps 2, 0). The script first checks on random weights that the
formulation equals `Conv2DTranspose` (max relative difference printed and saved).

Then it splits the whole JointVAE train step (the model of `VAEConfig()`, float32 and
`mixed_precision=True`) into nested parts, each a `tf.function` on one fixed batch of 64
embedded digits: the encoder and decoder networks alone (forward + backward, heads' Dense layers
included), the model's loss and gradients (TFP latents, likelihood, KLs), + Adam, + the metric
updates (`VAE.train_step`), and Keras' train function (`make_train_function`, what `bin/train`
runs).

Method: one thread (intra- and inter-op), every case warmed up, then `--rounds` interleaved
rounds of `--calls` calls of every case; median over rounds of CPU ms per call.

Usage: python benchmarks/bench_vae_layers.py [--rounds=5] [--calls=50]
           [--output=benchmarks/results/vae_step_layers.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

BATCH = 64
POLICIES = ("float32", "mixed_bfloat16")
# tap t of the 3x3 sub-pixel kernel, phase a -> which of the 4 taps of the transposed kernel
_PHASE_TAPS = {(0, 0): 3, (1, 0): 1, (1, 1): 2, (2, 1): 0}


def subpixel_kernel(kernel: tf.Tensor) -> tf.Tensor:
    """Conv2DTranspose kernel [4, 4, out, in] -> stride-1 conv kernel [3, 3, in, 4 * out]
    whose output, through depth_to_space(2), is the transposed convolution's."""
    select = np.zeros((3, 2, 4), np.float32)
    for (t, a), k in _PHASE_TAPS.items():
        select[t, a, k] = 1.0
    select = tf.constant(select, kernel.dtype)
    rearranged = tf.einsum("rak,sbl,klOI->rsIabO", select, select, kernel)
    return tf.reshape(rearranged, [3, 3, kernel.shape[3], 4 * kernel.shape[2]])


class SubPixelTranspose(keras.layers.Layer):
    """The weights of a built Conv2DTranspose, applied in the sub-pixel formulation."""

    def __init__(self, transpose: keras.layers.Conv2DTranspose):
        super().__init__(dtype=transpose.dtype_policy)
        self.transpose = transpose

    def call(self, x):
        t = self.transpose
        kernel = tf.cast(t.kernel, self.compute_dtype)
        y = tf.nn.depth_to_space(tf.nn.conv2d(x, subpixel_kernel(kernel), 1, "SAME"), 2)
        return t.activation(y + tf.cast(t.bias, self.compute_dtype))


def layer_cases(policy: str) -> list[tuple[str, keras.layers.Layer, tuple, bool]]:
    """(name, layer, input shape, input gradient needed) of the Table 3.1 networks."""
    def conv(c):
        return keras.layers.Conv2D(c, 4, 2, "same", activation="relu", dtype=policy)

    def up(c, activation="relu"):
        return keras.layers.Conv2DTranspose(c, 4, 2, "same", activation=activation, dtype=policy)

    def dense(u):
        return keras.layers.Dense(u, activation="relu", dtype=policy)

    return [("enc conv_0 1->32", conv(32), (32, 32, 1), False),
            ("enc conv_1 32->32", conv(32), (16, 16, 32), True),
            ("enc conv_2 32->64", conv(64), (8, 8, 32), True),
            ("enc dense 1024->128", dense(128), (1024,), True),
            ("dec dense 128->1024", dense(1024), (128,), True),
            ("dec upconv_0 64->64", up(64), (4, 4, 64), True),
            ("dec upconv_1 64->32", up(32), (8, 8, 64), True),
            ("dec logits 32->1", up(1, None), (16, 16, 32), True)]


def timed_call(layer: keras.layers.Layer, shape: tuple, input_grad: bool):
    x = tf.random.stateless_normal((BATCH, *shape), seed=[0, 1])
    layer(x)

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(tf.cast(layer(x), tf.float32)))
        return tape.gradient(loss, layer.trainable_variables + ([x] if input_grad else []))

    return lambda: forward_backward(x)


def step_parts(mixed_precision: bool) -> dict:
    """The nested parts of one JointVAE train step, as zero-argument callables."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from deepvib.data.sources import load_embedded
    from deepvib.data.transforms import fit_split
    from deepvib.models import VAEConfig, build_model

    config = VAEConfig(model="jointvae", mixed_precision=mixed_precision)
    x = tf.constant(fit_split(load_embedded("train").take(BATCH), config.input_shape).images)
    model = build_model(config)
    optimizer = keras.optimizers.Adam(5e-4)
    optimizer.build(model.trainable_variables)
    model.compile(optimizer=optimizer, jit_compile=False)
    step0 = tf.constant(0, tf.int64)

    @tf.function
    def networks(x):
        with tf.GradientTape() as tape:
            features = model.encoder(x, training=True)
            heads = [model.continuous_posterior.layers[0](features)[:, :config.continuous_dim]]
            heads += [head.layers[0](features) for head in model.discrete_posteriors]
            loss = tf.reduce_sum(tf.square(model.decoder(tf.concat(heads, -1))))
        return tape.gradient(loss, model.trainable_variables)

    def loss_and_tape(x):
        with tf.GradientTape() as tape:
            loss = model.loss_from_terms(model.objective_terms(x, training=True), step0)
        return loss, tape

    @tf.function
    def gradients(x):
        loss, tape = loss_and_tape(x)
        return tape.gradient(loss, model.trainable_variables)

    @tf.function
    def with_adam(x):
        loss, tape = loss_and_tape(x)
        model.apply_gradients(tape, loss)
        return loss

    train_step = tf.function(model.train_step)
    iterator = iter(tf.data.Dataset.from_tensors(x).repeat())
    train_function = model.make_train_function()
    return {"networks fwd+bwd": lambda: networks(x),
            "+ latents, likelihood, loss": lambda: gradients(x),
            "+ Adam": lambda: with_adam(x),
            "+ metric updates (VAE.train_step)": lambda: train_step(x),
            "Keras train function": lambda: train_function(iterator)}


def subpixel_error() -> float:
    """Max |sub-pixel - Conv2DTranspose| / max |Conv2DTranspose| over the decoder's shapes."""
    worst = 0.0
    for i, (cin, cout, n) in enumerate([(64, 64, 4), (64, 32, 8), (32, 1, 16)]):
        layer = keras.layers.Conv2DTranspose(cout, 4, 2, "same",
                                             bias_initializer="glorot_uniform")
        x = tf.random.stateless_normal((3, n, n, cin), seed=[i, 2])
        reference = layer(x)
        error = tf.reduce_max(tf.abs(SubPixelTranspose(layer)(x) - reference))
        worst = max(worst, float(error / tf.reduce_max(tf.abs(reference))))
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--output", type=pathlib.Path,
                        default=pathlib.Path("benchmarks/results/vae_step_layers.json"))
    args = parser.parse_args(argv)
    if min(args.rounds, args.calls) < 1:
        parser.error("--rounds and --calls must be >= 1")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    error = subpixel_error()

    cases = {}
    for policy in POLICIES:
        for name, layer, shape, input_grad in layer_cases(policy):
            cases[(name, policy)] = timed_call(layer, shape, input_grad)
            if isinstance(layer, keras.layers.Conv2DTranspose):
                cases[(name + " (sub-pixel)", policy)] = timed_call(
                    SubPixelTranspose(layer), shape, input_grad)
    for policy in POLICIES:
        for name, run in step_parts(policy != "float32").items():
            cases[("step: " + name, policy)] = run
    for run in cases.values():
        for _ in range(10):
            run()
    cpu = {key: [] for key in cases}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for key, run in cases.items():
            start = time.process_time()
            for _ in range(args.calls):
                run()
            cpu[key].append(1e3 * (time.process_time() - start) / args.calls)
    rows = [{"layer": name, "policy": policy, "median_cpu_ms": statistics.median(v),
             "cpu_ms_rounds": v} for (name, policy), v in cpu.items()]
    result = {"command": " ".join([os.path.basename(sys.executable), *sys.argv]),
              "tensorflow": tf.__version__, "batch": BATCH, "threads": 1,
              "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
              "subpixel_max_relative_difference": error, "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.output)

    print(f"sub-pixel formulation vs Conv2DTranspose: max relative difference {error:.1e}")
    print("| layer (forward + backward) | float32 CPU ms | mixed_bfloat16 CPU ms |")
    print("|---|---:|---:|")
    names = list(dict.fromkeys(r["layer"] for r in rows))
    by = {(r["layer"], r["policy"]): r["median_cpu_ms"] for r in rows}
    def row(name):
        print(f"| {name} | {by[(name, POLICIES[0])]:.2f} | {by[(name, POLICIES[1])]:.2f} |")

    layers = [n for n in names if not n.startswith("step: ")]
    for name in layers:
        row(name)
    plain = [n for n in layers if "sub-pixel" not in n]
    print(f"| sum (layers as built) | {sum(by[(n, POLICIES[0])] for n in plain):.2f} | "
          f"{sum(by[(n, POLICIES[1])] for n in plain):.2f} |")
    for name in names:
        if name.startswith("step: "):
            row(name)


if __name__ == "__main__":
    main()
