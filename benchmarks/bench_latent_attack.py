"""Throughput of the latent-space attack (`deepvib.attacks.latent`) on a VAE encoder, with and
without XLA (CPU). Random source/target images, a fixed number of projected-Adam steps
(abort-early off); the first short call of each mode pays the tracing/compilation and is
reported apart.

Usage: python benchmarks/bench_latent_attack.py --vae_dir runs/vae/mnist_jointvae \
    [--rows 128] [--steps 100] [--out runs/bench_latent_attack.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from deepvib.attacks.latent import latent_attack  # noqa: E402
from deepvib.training import run_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae_dir", required=True)
    parser.add_argument("--rows", type=int, default=128, help="(pair, c) rows in one batch")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    model, config = run_dir.load_model(args.vae_dir)
    size = config.model.image_size
    rng = np.random.default_rng(0)
    pairs = args.rows // 2
    x = rng.uniform(size=(pairs, size, size, 1)).astype(np.float32)
    xt = rng.uniform(size=(pairs, size, size, 1)).astype(np.float32)
    results = {"vae_dir": args.vae_dir, "rows": 2 * pairs, "steps": args.steps,
               "cpu_count": os.cpu_count(), "load_average": os.getloadavg()}
    for jit in (False, True):
        kwargs = dict(constants=(0.1, 1.0), abort_early=False, jit_compile=jit,
                      batch_size=2 * pairs)
        started = time.time()
        latent_attack(model.latent_mean, x, xt, max_iterations=2, **kwargs)
        first = time.time() - started
        started = time.time()
        latent_attack(model.latent_mean, x, xt, max_iterations=args.steps, **kwargs)
        seconds = time.time() - started
        results["xla" if jit else "graph"] = {
            "first_call_s": round(first, 2), "seconds": round(seconds, 2),
            "ms_per_step": round(1000 * seconds / args.steps, 1)}
        print(("xla  " if jit else "graph"), results["xla" if jit else "graph"], flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
