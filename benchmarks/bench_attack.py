"""Throughput of the Carlini & Wagner (2017) L2 attack on a 12-sample VIB model (CPU).

The attacked model is Alemi et al. (2017, section 4.2): MLP encoder 784-1024-1024 (ReLU) to a
256-d Gaussian, Dense(10) decoder, scores = log of the mean softmax over 12 posterior samples.
By default it is `deepvib`'s own VIB classifier with random weights (timing only); `--model_dir`
attacks a trained run instead.

One run compares, on the same pool of `batch` examples with every slot busy (abort-early off),
the attack's own iteration loop (forward pass, loss, input gradient, Adam update, best-so-far
bookkeeping, abort check, binary-search bookkeeping) run
  xla:   as one XLA-compiled tf.while_loop (what `cw_l2` uses),
  graph: as the same loop in a plain tf.function,
  eager: eagerly, op by op;
and two ways of drawing the 12-sample predictive:
  logit: 12 draws of the logits' 10-d Gaussian (`deepvib.models.logit_gaussian`, the default),
  z:     12 draws of z (256-d) decoded by the Dense layer (`VIBClassifier.predictive_log_probs`),
plus the posterior mean alone (no sampling), the cost of the network by itself.

`--eot-samples S1 S2 ...` adds the adaptive evaluation's CW loop (`bin/adaptive_attack`): the
EOT objective with S common random draws (`deepvib.attacks.eot`), with and without the
independent judge of success (`--judge-samples` draws) evaluated at every iterate.

`--record attack.json` adds the end-to-end numbers of a finished `bin/attack` run (wall time,
iterations actually run per example, achieved throughput).

Usage: python benchmarks/bench_attack.py [--batch-sizes 100 250] [--out runs/bench_attack.json]
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

from deepvib.attacks.eot import eot_scores  # noqa: E402
from deepvib.models import ModelConfig, build_model  # noqa: E402
from deepvib.models.logit_gaussian import LogitSpacePredictive, logit_gaussian  # noqa: E402
from deepvib.training import run_dir  # noqa: E402
from third_party.cleverhans_tf2 import CarliniWagnerL2  # noqa: E402
from third_party.cleverhans_tf2.carlini_wagner_l2 import _Examples, to_tanh_space  # noqa: E402

NUM_SAMPLES = 12
FULL_CW = {"images": 1000, "binary_search_steps": 9, "max_iterations": 10_000}
MODES = ("xla", "graph", "eager")


def load_vib(model_dir: str | None):
    if model_dir:
        model, _ = run_dir.load_model(model_dir)
        return model
    keras.utils.set_random_seed(0)
    return build_model(ModelConfig(model="vib", input_scaling="symmetric"))


def scores_fns(model) -> dict:
    return {
        "logit": LogitSpacePredictive(model, NUM_SAMPLES, seed=0),
        "z": lambda x: model.predictive_log_probs(x, NUM_SAMPLES),
        "mean": lambda x: model.predictive_log_probs(x, 0),
    }


def seconds_per_iteration(scores_fn, mode: str, batch: int, iterations: int,
                          success_fn=None) -> float:
    """Seconds per iteration of the attack's loop on a full pool (after a compiling call)."""
    attack = CarliniWagnerL2(scores_fn, (28, 28, 1), 10, batch_size=batch, abort_early=False,
                             compile=mode != "eager", jit_compile=mode == "xla",
                             success_fn=success_fn)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(batch, 28, 28, 1)).astype(np.float32)
    data = _Examples(x, to_tanh_space(tf.constant(x), 0.0, 1.0).numpy(),
                     np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)])
    pool = attack.pool(batch)
    pool.load(np.arange(batch), np.arange(batch), data)
    pool.run(tf.constant(2))
    _ = pool.modifier.numpy()
    start = time.perf_counter()
    ran = int(pool.run(tf.constant(iterations)))
    _ = pool.modifier.numpy()  # wait for asynchronous work
    assert ran == iterations, (ran, iterations)
    return (time.perf_counter() - start) / iterations


def measure(model, batch_sizes: list[int], iterations: int, eager_iterations: int) -> list[dict]:
    fns = scores_fns(model)
    rows = []
    for batch in batch_sizes:
        row: dict = {"batch_size": batch}
        for sampling in ("logit", "z", "mean"):
            modes = MODES if sampling != "mean" else ("xla",)
            for mode in modes:
                n = eager_iterations if mode == "eager" else iterations
                s = seconds_per_iteration(fns[sampling], mode, batch, n)
                row[f"{sampling}_{mode}_img_iter_per_s"] = batch / s
                print(f"batch {batch} {sampling:5s} {mode:5s}: {batch / s:9,.0f} img·it/s",
                      flush=True)
        for sampling in ("logit", "z"):
            xla = row[f"{sampling}_xla_img_iter_per_s"]
            row[f"{sampling}_xla_vs_eager"] = xla / row[f"{sampling}_eager_img_iter_per_s"]
            row[f"{sampling}_xla_vs_graph"] = xla / row[f"{sampling}_graph_img_iter_per_s"]
        rows.append(row)
    return rows


def measure_eot(model, batch: int, samples: list[int], judge_samples: int,
                iterations: int) -> list[dict]:
    """XLA throughput of the CW loop on the EOT objective (common random numbers), alone and
    with the independent judge of success at every iterate."""
    def gaussian(x):
        return logit_gaussian(model, x)

    judge = eot_scores(gaussian, judge_samples, seed=1)
    rows = []
    for s in samples:
        scores = eot_scores(gaussian, s, seed=0)
        row = {"batch_size": batch, "eot_samples": s, "judge_samples": judge_samples}
        for name, success_fn in (("alone", None), ("with_judge", judge)):
            sec = seconds_per_iteration(scores, "xla", batch, iterations, success_fn)
            row[f"{name}_img_iter_per_s"] = batch / sec
            print(f"batch {batch} EOT S={s:5d} {name:10s}: {batch / sec:9,.0f} img·it/s",
                  flush=True)
        rows.append(row)
    return rows


def summarize_record(path: pathlib.Path) -> dict:
    """Wall time and iterations of a finished bin/attack CW run."""
    record = json.loads(path.read_text())
    iterations = np.asarray(record["per_example"]["iterations"], np.int64)
    params = record["params"]
    budget = params["binary_search_steps"] * params["max_iterations"]
    return {
        "record": str(path),
        "run_name": record["run_name"],
        "experiment": record["experiment"],
        "images": len(iterations),
        "cw_batch_size": params["cw_batch_size"],
        "seconds": record["seconds"],
        "minutes": record["seconds"] / 60,
        "total_iterations": int(iterations.sum()),
        "mean_iterations_per_image": float(iterations.mean()),
        "min_iterations_per_image": int(iterations.min()),
        "max_iterations_per_image": int(iterations.max()),
        "fraction_of_budget": float(iterations.mean() / budget),
        "achieved_img_iter_per_s": float(iterations.sum() / record["seconds"]),
        "success_rate": record["summary"]["success_rate"],
    }


def markdown(rows: list[dict], end_to_end: dict | None) -> str:
    lines = [
        "| batch | sampling | XLA img·it/s | graph img·it/s | eager img·it/s | XLA / eager "
        "| XLA / graph |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b = r["batch_size"]
        for s in ("logit", "z"):
            lines.append(
                f"| {b} | {s} | {r[f'{s}_xla_img_iter_per_s']:,.0f} "
                f"| {r[f'{s}_graph_img_iter_per_s']:,.0f} | {r[f'{s}_eager_img_iter_per_s']:,.0f} "
                f"| {r[f'{s}_xla_vs_eager']:.1f}x | {r[f'{s}_xla_vs_graph']:.2f}x |")
        lines.append(f"| {b} | none (posterior mean) | {r['mean_xla_img_iter_per_s']:,.0f} "
                     "| | | | |")
    if end_to_end:
        e = end_to_end
        lines += [
            "",
            f"End to end ({e['run_name']}, {e['experiment']}, {e['images']} images, pool "
            f"{e['cw_batch_size']}): {e['minutes']:.1f} min, {e['total_iterations']:,} "
            f"image-iterations ({e['mean_iterations_per_image']:,.0f} per image, "
            f"{e['fraction_of_budget']:.1%} of the 90,000 budget; min "
            f"{e['min_iterations_per_image']:,}, max {e['max_iterations_per_image']:,}), "
            f"{e['achieved_img_iter_per_s']:,.0f} img·it/s achieved.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 250])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--eager-iterations", type=int, default=10)
    parser.add_argument("--model_dir", default=None, help="a trained VIB run (default: random)")
    parser.add_argument("--eot-samples", type=int, nargs="*", default=[],
                        help="also time the EOT CW loop with these sample counts")
    parser.add_argument("--judge-samples", type=int, default=1000)
    parser.add_argument("--skip-predictive", action="store_true",
                        help="skip the 12-sample predictive comparison (EOT rows only)")
    parser.add_argument("--record", type=pathlib.Path, default=None,
                        help="a bin/attack attack.json to summarise end to end")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/bench_attack.json"))
    args = parser.parse_args(argv)
    model = load_vib(args.model_dir)
    rows = ([] if args.skip_predictive
            else measure(model, args.batch_sizes, args.iterations, args.eager_iterations))
    eot_rows = [r for b in args.batch_sizes
                for r in measure_eot(model, b, args.eot_samples, args.judge_samples,
                                     args.iterations)] if args.eot_samples else []
    end_to_end = summarize_record(args.record) if args.record else None
    if rows:
        print(markdown(rows, end_to_end))
    env = {"tensorflow": tf.__version__, "cpu_count": os.cpu_count(),
           "platform": platform.platform(), "gpus": len(tf.config.list_physical_devices("GPU")),
           "load_average": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows": rows, "eot_rows": eot_rows, "end_to_end": end_to_end,
                               "env": env,
                               "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))
    tmp.replace(args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
