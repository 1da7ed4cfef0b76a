"""Where a JointVAE training step spends its CPU time, per TensorFlow op type, from the TF
profiler (`tf.profiler.experimental`, the `framework_op_stats` tool), for one variant of
`bench_vae_step.py` (Table 3.1 widths, batch 64, one fixed batch).

Op self-times are summed over all threads, so they add up to CPU time, not wall time; `IDLE`
is the profiler's idle time of the threads it saw and is left out of the total.

Usage: python benchmarks/profile_vae_step.py [--variant=tf_graph_bf16_fused_loop]
           [--steps=200] [--top=20] [--output=benchmarks/results/vae_step_profile.json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pathlib
import sys
import tempfile

import tensorflow as tf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import bench_vae_step as bench  # noqa: E402
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin  # noqa: E402

from deepvib.training import atomic  # noqa: E402


def op_stats(trace_dir: str) -> list[dict]:
    """The rows of the profiler's framework_op_stats table: op type, name, self-time (us)."""
    (path,) = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data([path], "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"the profiler could not read {path}")
    table = json.loads(data)[0]
    columns = [c["id"] for c in table["cols"]]
    rows = [dict(zip(columns, [c["v"] if c else None for c in r["c"]], strict=True))
            for r in table["rows"]]
    return [{"type": r["type"], "operation": r["operation"],
             "self_us": float(r["total_self_time"])} for r in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="tf_graph_bf16_fused_loop",
                        choices=bench.KERAS_VARIANTS)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--steps_per_execution", type=int, default=20)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--output", type=pathlib.Path,
                        default=pathlib.Path("benchmarks/results/vae_step_profile.json"))
    args = parser.parse_args(argv)
    if args.steps < 1 or args.steps % args.steps_per_execution:
        parser.error("--steps must be a positive multiple of --steps_per_execution")
    config = bench.vae_config("thesis")
    images = bench.fixed_batch(config)
    run = bench.keras_variant(args.variant, config, bench.vae_config("thesis", True), images,
                              args.steps_per_execution)
    run(100)  # warm up
    with tempfile.TemporaryDirectory() as trace_dir:
        tf.profiler.experimental.start(trace_dir)
        run(args.steps)
        tf.profiler.experimental.stop()
        rows = op_stats(trace_dir)
    by_type: dict[str, float] = {}
    for row in rows:
        by_type[row["type"]] = by_type.get(row["type"], 0.0) + row["self_us"] / args.steps
    busy = sum(us for kind, us in by_type.items() if kind != "IDLE")
    ranked = sorted(((k, v) for k, v in by_type.items() if k != "IDLE"), key=lambda kv: -kv[1])
    result = {"variant": args.variant, "steps": args.steps,
              "cpu_us_per_step": round(busy, 1),
              "per_op_type_us_per_step": {k: round(v, 1) for k, v in ranked}}
    atomic.write_text(str(args.output), json.dumps(result, indent=1) + "\n")
    print(f"{args.variant}: {busy / 1e3:.2f} CPU ms per step over {args.steps} steps")
    print("| op type | CPU us / step | share |\n|---|---:|---:|")
    for kind, us in ranked[:args.top]:
        print(f"| {kind} | {us:.0f} | {100 * us / busy:.1f}% |")


if __name__ == "__main__":
    main()
