"""Serving latency and throughput of an exported VIB SavedModel against the Keras model (CPU).

The model is the full-size VIB of Alemi et al. (2017, §4.1): 784-1024-1024 ReLU encoder to a
K=256 diagonal Gaussian, Dense(10) decoder, random weights (timing only). It is written as a
run directory and exported with `deepvib.export` (the `bin/export` path), for S = 12 posterior
samples and for S = 0 (z = posterior mean), then compared in one process:

  saved_model      `tf.saved_model.load(path).signatures["serving_default"](images=x)`, what
                   a Python client of the SavedModel calls (same graph as TF Serving runs);
  saved_model_xla  the same, exported with `--jit_compile` (XLA; TF Serving needs
                   --xla_cpu_compilation_enabled=true for it);
  keras_function   `tf.function(lambda x: model.predictive_log_probs(x, S))`, the Keras model
                   called in a tf.function (`model(x)` is the same with the run's S);
  keras_eager      `model.predictive_log_probs(x, S)` run eagerly;
  floor_matmuls    the three encoder matmuls alone in a tf.function: what the weights cost.

Batch 1: latency p50 / p99 over --calls calls after --warmup calls; batch 256: images/s. Each
call includes reading the result back (`.numpy()`). Variants run interleaved, in --rounds rounds,
so that load from other processes hits them alike; the CPU time of each call (all threads) is
reported beside the wall time, as it is less disturbed by other processes on the machine.

Usage: python benchmarks/bench_serving.py [--calls 500] [--out runs/bench_serving.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tf_keras as keras

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from deepvib.export import export_run  # noqa: E402
from deepvib.export.signatures import IMAGES_SPEC  # noqa: E402
from deepvib.models import ModelConfig, build_model  # noqa: E402
from deepvib.training import run_dir  # noqa: E402
from deepvib.training.config import TrainConfig  # noqa: E402

SAMPLES = (12, 0)
LARGE_BATCH = 256
Call = Callable[[tf.Tensor], np.ndarray]


def write_random_run(path: str, seed: int = 0) -> ModelConfig:
    """A run directory with a full-size VIB model at its initial (random) weights."""
    keras.utils.set_random_seed(seed)
    config = ModelConfig()  # K=256, 1024-1024, diag, eval_samples=12
    run_dir.prepare(TrainConfig(model=config, output_dir=path, epochs=1))
    model = build_model(config)
    run_dir.checkpoint_manager(path, tf.train.Checkpoint(model=model)).save(checkpoint_number=1)
    return config


def variants(run: str, exports: str, samples: int) -> dict[str, Call]:
    model, _ = run_dir.load_model(run)
    plain = export_run(run, exports, eval_samples=samples, model_name=f"s{samples}")
    xla = export_run(run, exports, eval_samples=samples, model_name=f"s{samples}_xla",
                     jit_compile=True)
    serve = tf.saved_model.load(plain.path).signatures["serving_default"]
    serve_xla = tf.saved_model.load(xla.path).signatures["serving_default"]
    predictive = tf.function(lambda x: model.predictive_log_probs(x, samples),
                             input_signature=[IMAGES_SPEC])
    dense = [model.trunk.get_layer(f"hidden_{i}") for i in range(2)]
    dense.append(model.posterior_layer.get_layer("posterior_params"))
    kernels = [layer.kernel for layer in dense]

    @tf.function(input_signature=[IMAGES_SPEC])
    def floor(x):
        h = tf.reshape(x, [-1, 784])
        for kernel in kernels:
            h = tf.matmul(h, kernel)
        return h

    return {
        "saved_model": lambda x: serve(images=x)["probabilities"].numpy(),
        "saved_model_xla": lambda x: serve_xla(images=x)["probabilities"].numpy(),
        "keras_function": lambda x: predictive(x).numpy(),
        "keras_eager": lambda x: model.predictive_log_probs(x, samples).numpy(),
        "floor_matmuls": lambda x: floor(x).numpy(),
    }


def latencies(call: Call, x: tf.Tensor, n: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each of `n` calls; CPU time, summed over the process's threads,
    is what a call costs when nothing else competes for the cores."""
    out = []
    for _ in range(n):
        start, cpu = time.perf_counter(), time.process_time()
        call(x)
        out.append((time.perf_counter() - start, time.process_time() - cpu))
    return out


def measure(calls: dict[str, Call], args: argparse.Namespace) -> dict[str, dict]:
    rng = np.random.default_rng(0)
    x1 = tf.constant(rng.uniform(size=(1, 28, 28, 1)).astype(np.float32))
    xl = tf.constant(rng.uniform(size=(LARGE_BATCH, 28, 28, 1)).astype(np.float32))
    slow = {"keras_eager"}  # ~30 ms a call: fewer calls

    def share(name: str, total: int) -> int:
        return max(1, total // (10 if name in slow else 1) // args.rounds)

    for name, call in calls.items():  # warm-up: tracing, XLA compiles for both batch sizes
        latencies(call, x1, share(name, args.warmup * args.rounds))
        latencies(call, xl, 2)
    small = {name: [] for name in calls}
    large = {name: [] for name in calls}
    for _ in range(args.rounds):
        for name, call in calls.items():
            small[name] += latencies(call, x1, share(name, args.calls))
            large[name] += latencies(call, xl, share(name, args.large_calls))
    return {name: summary(small[name], large[name]) for name in calls}


def summary(small: list[tuple[float, float]], large: list[tuple[float, float]]) -> dict:
    wall, cpu = (1e3 * np.array(column) for column in zip(*small, strict=True))
    large_wall, large_cpu = (sum(column) for column in zip(*large, strict=True))
    return {
        "batch1_calls": len(small),
        "batch1_p50_ms": float(np.percentile(wall, 50)),
        "batch1_p99_ms": float(np.percentile(wall, 99)),
        "batch1_mean_ms": float(np.mean(wall)),
        "batch1_cpu_p50_ms": float(np.percentile(cpu, 50)),
        f"batch{LARGE_BATCH}_calls": len(large),
        f"batch{LARGE_BATCH}_images_per_s": LARGE_BATCH * len(large) / large_wall,
        f"batch{LARGE_BATCH}_images_per_cpu_s": LARGE_BATCH * len(large) / large_cpu,
    }


def markdown(results: dict[int, dict[str, dict]]) -> str:
    b = f"batch{LARGE_BATCH}"
    lines = [
        f"| S | variant | batch 1 p50 ms | batch 1 p99 ms | batch 1 CPU p50 ms "
        f"| batch {LARGE_BATCH} images/s | batch {LARGE_BATCH} images/CPU-s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for samples, rows in results.items():
        for name, r in rows.items():
            lines.append(
                f"| {samples} | {name} | {r['batch1_p50_ms']:.3f} | {r['batch1_p99_ms']:.3f} "
                f"| {r['batch1_cpu_p50_ms']:.3f} | {r[f'{b}_images_per_s']:,.0f} "
                f"| {r[f'{b}_images_per_cpu_s']:,.0f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="timed batch-1 calls per variant")
    parser.add_argument("--warmup", type=int, default=50, help="untimed batch-1 calls first")
    parser.add_argument("--large-calls", type=int, default=40,
                        help=f"timed batch-{LARGE_BATCH} calls per variant")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--out", type=pathlib.Path,
                        default=pathlib.Path("runs/bench_serving.json"))
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "vib_k256")
        write_random_run(run)
        for samples in SAMPLES:
            results[samples] = measure(variants(run, os.path.join(tmp, "exports"), samples),
                                       args)
    table = markdown(results)
    print(table)
    env = {
        "tensorflow": tf.__version__,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(
        {"results": {str(s): r for s, r in results.items()}, "env": env,
         "args": {k: str(v) for k, v in vars(args).items()}, "markdown": table}, indent=2))
    print(f"\nloadavg before {load_before}, after {env['loadavg_after']}; wrote {args.out}")


if __name__ == "__main__":
    main()
