"""Resolves `bin/train` command lines to the TrainConfig each would train, without training.

`bin/sweep` runs this once, as a child process, for all its runs (the training flags live on
absl's global FLAGS, which the sweep's own flags share): it learns every run's epochs (to tell
a finished run from one to continue) and model (a beta grid applies to VIB runs only), and
rejects a flag typo or a bad value before any run starts, with bin/train's own message.

    python -m deepvib.experiments.train_flags_resolver < [["--flagfile=...", ...], ...]

prints one JSON list: {"config": TrainConfig dict} or {"error": message} per command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def resolve(arg_lists: list[list[str]]) -> list[dict[str, Any]]:
    """[{"config": ...} or {"error": ...}] for each bin/train argument list (child process)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-m", __name__], input=json.dumps(arg_lists),
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"could not resolve the bin/train flags: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _resolve_in_this_process(arg_lists: list[list[str]]) -> list[dict[str, Any]]:
    from absl import flags

    from deepvib.training import flags as train_flags

    train_flags.define_flags()
    out = []
    for args in arg_lists:
        flags.FLAGS.unparse_flags()
        try:
            rest = flags.FLAGS(["bin/train", *args])
            if len(rest) > 1:
                raise ValueError(f"unexpected arguments: {' '.join(rest[1:])}")
            out.append({"config": train_flags.config_from_flags().to_dict()})
        except (flags.Error, ValueError) as e:
            out.append({"error": str(e)})
    return out


if __name__ == "__main__":
    print(json.dumps(_resolve_in_this_process(json.load(sys.stdin))))
