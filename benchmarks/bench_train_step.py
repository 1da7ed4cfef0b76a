"""Speed of one VIB K=256 training step (Alemi et al. 2017, §4.1.1: batch 100) on this machine.

In one run, side by side:
  matmul:      the machine's large-matmul throughput (2048x2048 float32, tf.function), the
               ceiling a dense MLP step can approach;
  matmuls_only_xla: the step's dense matmuls alone, forward and backward, same shapes, XLA
               (what batch-100 shapes allow, with no optimizer, sampling or bookkeeping);
  fit_xla:     the step `bin/train` runs: `VIBClassifier.train_step` inside Keras' train
               function with `jit_compile=True`, fed by the tf.data pipeline of `deepvib.data`;
  fit_graph:   the same without XLA (`--nojit_compile`);
  eager:       a plain TensorFlow eager loop of the same model and objective (GradientTape,
               no tf.function), the baseline a newcomer would write first.
Each row reports ms per step, the model's FLOPs per step (forward + backward = 3x the forward
matmuls) divided by the time, and that as a fraction of the measured matmul throughput.
`pipeline_stall` compares fit_xla fed by tf.data with the same step on one constant batch;
`fit_xla_constant_batch_no_ema` drops the weight moving average (`--ema_decay=0`).

Usage: python benchmarks/bench_train_step.py [--steps 300] [--out runs/bench_train_step.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from deepvib.data import Split, make_dataset  # noqa: E402
from deepvib.models import ModelConfig, build_model, objectives  # noqa: E402

BATCH = 100
CONFIG = ModelConfig(model="vib", bottleneck_dim=256, beta=1e-3, ema_decay=0.999)


def step_flops(config: ModelConfig = CONFIG, batch: int = BATCH) -> float:
    """Multiply-adds of the dense layers x 2 (FLOPs) x 3 (forward + backward)."""
    sizes = [784, *config.hidden_units]
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    macs += sizes[-1] * 2 * config.bottleneck_dim + config.bottleneck_dim * config.num_classes
    return 2.0 * 3.0 * batch * macs


def matmul_gflops(n: int = 2048, reps: int = 20) -> float:
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(lambda x, y: tf.matmul(x, y))
    mm(a, b).numpy()
    start = time.perf_counter()
    for _ in range(reps):
        out = mm(a, b)
    out.numpy()
    return 2.0 * n**3 * reps / (time.perf_counter() - start) / 1e9


def time_matmul_chain(steps: int, config: ModelConfig = CONFIG, batch: int = BATCH) -> float:
    """Seconds per forward + backward pass of the step's dense matmuls alone (same shapes,
    XLA): the ceiling of this step at this batch size, without optimizer or sampling."""
    sizes = [784, *config.hidden_units, 2 * config.bottleneck_dim]
    shapes = [*zip(sizes[:-1], sizes[1:], strict=True),
              (config.bottleneck_dim, config.num_classes)]
    weights = [tf.Variable(0.03 * tf.random.normal(shape)) for shape in shapes]
    x = tf.random.normal((batch, 784))

    @tf.function(jit_compile=True)
    def forward_backward(x):
        with tf.GradientTape() as tape:
            h = x
            for w in weights[:-2]:
                h = tf.nn.relu(h @ w)
            z = (h @ weights[-2])[:, : config.bottleneck_dim]
            loss = tf.reduce_sum(tf.square(z @ weights[-1]))
        return [g[0, 0] for g in tape.gradient(loss, weights)]

    float(forward_backward(x)[0])
    start = time.perf_counter()
    for _ in range(steps):
        out = forward_backward(x)
    float(out[0])
    return (time.perf_counter() - start) / steps


def fake_split(n: int) -> Split:
    rng = np.random.default_rng(0)
    return Split(rng.uniform(size=(n, 28, 28, 1)).astype(np.float32),
                 rng.integers(0, 10, n).astype(np.int64))


def compiled_model(jit_compile: bool, config: ModelConfig = CONFIG):
    model = build_model(config)
    optimizer = keras.optimizers.Adam(1e-4, beta_1=0.5)
    optimizer.build(model.trainable_variables)
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    return model


def time_fit_steps(
    jit_compile: bool, steps: int, constant_batch: bool = False, config: ModelConfig = CONFIG
) -> float:
    """Seconds per step of Keras' train function (the one model.fit runs)."""
    model = compiled_model(jit_compile, config)
    if constant_batch:
        split = fake_split(BATCH)
        ds = tf.data.Dataset.from_tensors((split.images, split.labels)).repeat()
    else:
        ds = make_dataset(fake_split(60_000), BATCH, shuffle=True, drop_remainder=True).repeat()
    iterator = iter(ds)
    train_function = model.make_train_function()
    for _ in range(20):
        logs = train_function(iterator)
    float(logs["loss"])
    start = time.perf_counter()
    for _ in range(steps):
        logs = train_function(iterator)
    float(logs["loss"])
    return (time.perf_counter() - start) / steps


def time_eager_steps(steps: int) -> float:
    """A plain eager loop: same model, eq. 17 with one sample, Adam, no tf.function."""
    model = build_model(CONFIG)
    optimizer = keras.optimizers.Adam(1e-4, beta_1=0.5)
    split = fake_split(BATCH * 10)
    images, labels = tf.constant(split.images), tf.constant(split.labels)

    def step(i: int) -> tf.Tensor:
        x, y = images[i * BATCH:(i + 1) * BATCH], labels[i * BATCH:(i + 1) * BATCH]
        with tf.GradientTape() as tape:
            posterior = model.posterior(x, training=True)
            logits = model.decoder(posterior.sample())
            loss = tf.reduce_mean(objectives.vib_loss(y, logits, model.kl_to_prior(posterior),
                                                      CONFIG.beta))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    for i in range(5):
        step(i % 10)
    start = time.perf_counter()
    for i in range(steps):
        loss = step(i % 10)
    float(loss)
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eager-steps", type=int, default=50)
    parser.add_argument("--out", type=pathlib.Path,
                        default=pathlib.Path("runs/bench_train_step.json"))
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)

    peak = matmul_gflops()
    flops = step_flops()
    seconds = {
        "matmuls_only_xla": time_matmul_chain(args.steps),
        "fit_xla": time_fit_steps(True, args.steps),
        "fit_graph": time_fit_steps(False, args.steps),
        "eager": time_eager_steps(args.eager_steps),
        "fit_xla_constant_batch": time_fit_steps(True, args.steps, constant_batch=True),
        "fit_xla_constant_batch_no_ema": time_fit_steps(
            True, args.steps, constant_batch=True,
            config=dataclasses.replace(CONFIG, ema_decay=0.0)),
    }
    peak_again = matmul_gflops()  # bracket the runs: the machine may be shared
    matmul = max(peak, peak_again)
    rows = []
    for name, sec in seconds.items():
        gflops = flops / sec / 1e9
        rows.append({"variant": name, "ms_per_step": 1e3 * sec, "gflops": gflops,
                     "fraction_of_matmul": gflops / matmul})
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}",
        "batch": BATCH, "step_gflop": flops / 1e9,
        "matmul_gflops": [peak, peak_again],
        "rows": rows,
        "speedup_xla_vs_eager": seconds["eager"] / seconds["fit_xla"],
        "speedup_xla_vs_graph": seconds["fit_graph"] / seconds["fit_xla"],
        "pipeline_stall": seconds["fit_xla"] / seconds["fit_xla_constant_batch"] - 1.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"machine: {result['machine']}; matmul 2048^2: "
          f"{peak:.1f} / {peak_again:.1f} GFLOP/s (before / after)")
    print(f"VIB K=256 step, batch {BATCH}: {flops / 1e9:.3f} GFLOP\n")
    print("| variant | ms / step | GFLOP/s | fraction of matmul |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['ms_per_step']:.2f} | {r['gflops']:.1f} | "
              f"{r['fraction_of_matmul']:.0%} |")
    print(f"\nXLA vs eager: {result['speedup_xla_vs_eager']:.2f}x; XLA vs graph: "
          f"{result['speedup_xla_vs_graph']:.2f}x; tf.data vs constant batch: "
          f"{100 * result['pipeline_stall']:+.1f}%")


if __name__ == "__main__":
    main()
