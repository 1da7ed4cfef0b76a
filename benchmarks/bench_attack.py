"""Throughput of the Carlini & Wagner (2017) L2 attack step on a VIB-shaped model (CPU).

The model mirrors Alemi et al. (2017, section 4.2): MLP encoder 784-1024-1024 (ReLU) to a
256-d Gaussian (mean, softplus(rho - 5) std), 12 reparameterised samples, Dense(10) decoder,
logits = log of the mean softmax over the samples. Weights are random (timing only).

Compares, in one run, three ways of running the same CW iteration (forward, loss, gradient,
Adam update, best-so-far bookkeeping, abort check) on a whole batch:
  while_loop: the attack's own driver, a tf.function-compiled tf.while_loop over iterations;
  step:       one tf.function call per iteration from a Python loop;
  eager:      the iteration run eagerly.

Usage: python benchmarks/bench_attack.py [--batch-sizes 100 1000] [--out runs/bench_attack.json]
"""

from __future__ import annotations

import argparse
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

from third_party.cleverhans_tf2 import CarliniWagnerL2  # noqa: E402

NUM_SAMPLES = 12
BOTTLENECK = 256
FULL_CW_IMAGES = 1000
FULL_CW_STEPS = 9
FULL_CW_ITERATIONS = 10_000


def vib_logits_fn(seed: int = 0):
    """log mean_s softmax(decoder(z_s)), z_s ~ N(mu(x), softplus(rho(x) - 5)^2)."""
    keras.utils.set_random_seed(seed)
    encoder = keras.Sequential([
        keras.layers.Flatten(),
        keras.layers.Dense(1024, activation="relu"),
        keras.layers.Dense(1024, activation="relu"),
        keras.layers.Dense(2 * BOTTLENECK),
    ])
    decoder = keras.layers.Dense(10)

    def logits_fn(x: tf.Tensor) -> tf.Tensor:
        mu, rho = tf.split(encoder(x), 2, axis=-1)
        std = tf.nn.softplus(rho - 5.0)
        eps = tf.random.normal([NUM_SAMPLES, *mu.shape])
        log_probs = tf.nn.log_softmax(decoder(mu + std * eps), axis=-1)
        return tf.reduce_logsumexp(log_probs, axis=0) - np.log(NUM_SAMPLES)

    logits_fn(tf.zeros([1, 28, 28, 1]))  # build the layers
    return logits_fn


def prepared_attack(logits_fn, batch_size: int, compile: bool) -> CarliniWagnerL2:
    """An attack whose state holds one batch, ready for the first binary-search step."""
    attack = CarliniWagnerL2(logits_fn, (28, 28, 1), 10, batch_size=batch_size,
                             abort_early=False, compile=compile)
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, size=(batch_size, 28, 28, 1)).astype(np.float32)
    attack._load(x, rng.integers(0, 10, size=batch_size))
    attack.const.assign(tf.fill([batch_size], 1e-3))
    attack.active.assign(tf.ones([batch_size], tf.bool))
    return attack


def time_mode(mode: str, logits_fn, batch_size: int, iterations: int) -> float:
    """Seconds per iteration (after one warm-up call that compiles)."""
    attack = prepared_attack(logits_fn, batch_size, compile=mode == "while_loop")
    if mode == "while_loop":
        def run(n: int) -> None:
            attack._run(tf.constant(n, tf.int32))
    else:
        step = tf.function(attack._iteration) if mode == "step" else attack._iteration

        def run(n: int) -> None:
            for _ in range(n):
                step()
    run(2)
    _ = attack.modifier.numpy()
    start = time.perf_counter()
    run(iterations)
    _ = attack.modifier.numpy()  # wait for asynchronous work
    return (time.perf_counter() - start) / iterations


def measure(batch_sizes: list[int], iterations: int, eager_iterations: int) -> list[dict]:
    logits_fn = vib_logits_fn()
    rows = []
    for batch in batch_sizes:
        timings = {
            "while_loop": time_mode("while_loop", logits_fn, batch, iterations),
            "step": time_mode("step", logits_fn, batch, iterations),
            "eager": time_mode("eager", logits_fn, batch, eager_iterations),
        }
        row = {"batch_size": batch}
        for mode, seconds in timings.items():
            row[f"{mode}_s_per_iter"] = seconds
            row[f"{mode}_img_iter_per_s"] = batch / seconds
        row["while_loop_vs_eager"] = timings["eager"] / timings["while_loop"]
        row["step_vs_eager"] = timings["eager"] / timings["step"]
        rows.append(row)
    return rows


def extrapolate(rows: list[dict], fraction_run: float) -> dict:
    """Hours for untargeted CW on 1000 images at C&W defaults, best measured throughput."""
    best = max(r["while_loop_img_iter_per_s"] for r in rows)
    worst_case = FULL_CW_IMAGES * FULL_CW_STEPS * FULL_CW_ITERATIONS / best
    return {
        "images": FULL_CW_IMAGES,
        "binary_search_steps": FULL_CW_STEPS,
        "max_iterations": FULL_CW_ITERATIONS,
        "img_iter_per_s": best,
        "hours_if_no_abort": worst_case / 3600,
        "assumed_fraction_of_iterations_run": fraction_run,
        "hours_with_abort_early": worst_case * fraction_run / 3600,
    }


def markdown(rows: list[dict], extra: dict) -> str:
    lines = [
        "| batch | while_loop img·it/s | step img·it/s | eager img·it/s "
        "| while_loop / eager | step / eager |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch_size']} | {r['while_loop_img_iter_per_s']:,.0f} "
            f"| {r['step_img_iter_per_s']:,.0f} | {r['eager_img_iter_per_s']:,.0f} "
            f"| {r['while_loop_vs_eager']:.2f}x | {r['step_vs_eager']:.2f}x |"
        )
    lines.append("")
    lines.append(
        f"Full untargeted CW, {extra['images']} images x {extra['binary_search_steps']} steps "
        f"x {extra['max_iterations']:,} iterations at {extra['img_iter_per_s']:,.0f} img·it/s: "
        f"{extra['hours_if_no_abort']:.1f} h without early abort; "
        f"{extra['hours_with_abort_early']:.1f} h if abort-early leaves "
        f"{extra['assumed_fraction_of_iterations_run']:.0%} of the iterations."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--eager-iterations", type=int, default=10)
    parser.add_argument("--abort-fraction", type=float, default=0.3,
                        help="assumed fraction of iterations run with abort-early")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/bench_attack.json"))
    args = parser.parse_args(argv)
    rows = measure(args.batch_sizes, args.iterations, args.eager_iterations)
    extra = extrapolate(rows, args.abort_fraction)
    print(markdown(rows, extra))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    env = {"tensorflow": tf.__version__, "cpu_count": os.cpu_count(),
           "platform": platform.platform(), "gpus": len(tf.config.list_physical_devices("GPU"))}
    args.out.write_text(json.dumps({"rows": rows, "full_cw": extra, "env": env,
                                    "args": {k: str(v) for k, v in vars(args).items()}},
                                   indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
