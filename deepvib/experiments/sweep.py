"""A sweep of training runs (Alemi et al. 2017, §4.1: Table 1's rows over seeds, Figure 1's
beta grid): flagfiles x betas x seeds, one `bin/train` child process and run directory each.

- Run names come from the grid: `<flagfile stem>[_beta<b>][_seed<s>]`; the beta grid applies
  to VIB flagfiles only (a baseline has no beta), and seeds and betas override the flagfile
  only when given.
- A run whose metrics.json reports the requested epochs is skipped; one with a config.json
  and fewer epochs is resumed (bin/train continues from its last checkpoint); the rest start.
- A run with no run directory whose summary is already under `<results_dir>/runs/` (same
  config, the requested epochs or more) is skipped too: `runs/` does not move between
  machines, the committed summaries do.
- Every finished run's summary (`run_summary`) goes to `<results_dir>/runs/<name>.json`, and
  the sweep's own record (runs, states, wall times) to `<results_dir>/sweeps/<sweep>.json`,
  rewritten after every run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from deepvib.experiments import run_summary
from deepvib.experiments.run_summary import beta_name
from deepvib.experiments.train_flags_resolver import resolve
from deepvib.training import atomic

FORMAT = "deepvib.sweep/1"
SWEEPS_SUBDIR = "sweeps"
LOGS_SUBDIR = "logs"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, "bin", "train")
# TensorFlow's C++ start-up lines: kept in the log file, not echoed.
TF_NOISE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)")
# States of a run: before the sweep runs it, and after.
NEW, INTERRUPTED, FINISHED = "new", "interrupted", "finished"
COMMITTED = "committed"  # no run directory, but its summary under results_dir/runs matches
TRAINED, SKIPPED, FAILED, PENDING = "trained", "skipped (finished before)", "failed", "pending"


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    name: str
    flagfile: str
    beta: float | None
    seed: int | None
    args: tuple[str, ...]  # bin/train's command-line flags
    run_dir: str
    config: dict[str, Any]  # the TrainConfig bin/train will train, resolved from `args`

    @property
    def epochs(self) -> int:
        return int(self.config["epochs"])


def run_name(flagfile: str, beta: float | None, seed: int | None) -> str:
    name = os.path.splitext(os.path.basename(flagfile))[0]
    if beta is not None:
        name += f"_beta{beta_name(beta)}"
    if seed is not None:
        name += f"_seed{seed}"
    return name


def plan(flagfiles: list[str], betas: list[float], seeds: list[int], runs_dir: str,
         train_args: list[str], resolver: Callable = resolve) -> list[PlannedRun]:
    """Every run of the grid, with its resolved config; bad flags are a ValueError naming
    the run, raised before anything is trained."""
    if not flagfiles:
        raise ValueError("--flagfiles is empty: name at least one bin/train flagfile")
    for path in flagfiles:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"flagfile {path} does not exist")
    for arg in train_args:
        if not arg.startswith("--"):
            raise ValueError(f"bin/train arguments must be --flags, got {arg!r}")
    # One resolution for the whole grid (one child process); a baseline keeps one run per
    # seed, without the beta override, which it would ignore.
    full = [(f, b, s) for f in flagfiles for b in (betas or [None]) for s in (seeds or [None])]
    configs = _resolved([_train_args(f, b, s, train_args, "_") for f, b, s in full],
                        [run_name(*cell) for cell in full], resolver)
    grid, grid_configs = [], []
    for (f, b, s), config in zip(full, configs, strict=True):
        if config["model"]["model"] != "vib" and b is not None:
            if b != betas[0]:
                continue
            b = None
        grid.append((f, b, s))
        grid_configs.append(config)
    names = [run_name(*cell) for cell in grid]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two runs would share the name {duplicates[0]!r} (flagfiles with "
                         "the same base name, or repeated betas or seeds)")
    runs = []
    for (f, b, s), name, config in zip(grid, names, grid_configs, strict=True):
        run_dir = os.path.join(runs_dir, name)
        runs.append(PlannedRun(name=name, flagfile=f, beta=b, seed=s,
                               args=tuple(_train_args(f, b, s, train_args, run_dir)),
                               run_dir=run_dir, config={**config, "output_dir": run_dir}))
    return runs


def _train_args(flagfile: str, beta: float | None, seed: int | None, extra: list[str],
                output_dir: str) -> list[str]:
    args = [f"--flagfile={flagfile}", *extra]
    if beta is not None:
        args.append(f"--beta={beta!r}")
    if seed is not None:
        args.append(f"--seed={seed}")
    return [*args, f"--output_dir={output_dir}"]


def _resolved(arg_lists: list[list[str]], names: list[str], resolver: Callable) -> list[dict]:
    results = resolver(arg_lists)
    for name, result in zip(names, results, strict=True):
        if "error" in result:
            raise ValueError(f"{name}: bin/train would refuse its flags: {result['error']}")
    return [r["config"] for r in results]


# Config keys that may differ between a run directory and its planned run (bin/train's
# resumable keys, and H(Y), which bin/train sets from the data).
COMPATIBLE_KEYS = ("epochs", "data_dir", "output_dir", "model.label_entropy_bits")


def check_run_dirs(runs: list[PlannedRun]) -> None:
    """A run directory holding another configuration is an error before anything runs
    (bin/train would refuse it; a finished one would otherwise be skipped silently)."""
    for run in runs:
        path = os.path.join(run.run_dir, run_summary.CONFIG)
        if not os.path.isfile(path):
            continue
        differ = config_differences(atomic.read_json(path), run.config)
        if differ:
            raise ValueError(f"{run.run_dir} holds a run with another config than "
                             f"{run.name} (differs in: {', '.join(differ)}); choose another "
                             "--runs_dir or remove it")


def config_differences(saved: dict, planned: dict) -> list[str]:
    """Dotted keys on which a saved run's config and a planned one disagree, beyond
    COMPATIBLE_KEYS. A saved config from before a field existed is compared at the value that
    field had then (`run_summary.with_added_fields`); other keys only one side has are not
    compared (bin/train fills in new keys)."""
    saved = run_summary.flattened(run_summary.with_added_fields(saved))
    planned = run_summary.flattened(planned)
    return sorted(k for k in set(saved) & set(planned)
                  if k not in COMPATIBLE_KEYS and saved[k] != planned[k])


def state(run: PlannedRun, results_dir: str | None = None) -> str:
    """FINISHED (metrics.json with the requested epochs or more), INTERRUPTED (a run to
    resume or extend), COMMITTED (no run directory, but a matching summary in
    `results_dir`) or NEW."""
    metrics = os.path.join(run.run_dir, run_summary.METRICS)
    if os.path.isfile(metrics) and atomic.read_json(metrics).get("epochs", 0) >= run.epochs:
        return FINISHED
    if os.path.isfile(os.path.join(run.run_dir, run_summary.CONFIG)):
        return INTERRUPTED
    if results_dir and committed_summary(run, results_dir) is not None:
        return COMMITTED
    return NEW


def committed_summary(run: PlannedRun, results_dir: str) -> dict | None:
    """The run's summary under `results_dir` if it was trained with the planned config
    (up to COMPATIBLE_KEYS) for the requested epochs or more; else None."""
    summary = _existing(run_summary.summary_path(results_dir, run.name))
    if summary is None or summary.get("metrics", {}).get("epochs", 0) < run.epochs:
        return None
    return None if config_differences(summary.get("config", {}), run.config) else summary


def describe(run: PlannedRun) -> str:
    model = run.config["model"]
    what = f"{model['model']} K={model['bottleneck_dim']}"
    if model["model"] == "vib":
        what += f" beta={model['beta']:g}"
    return (f"{run.name}: {what}, seed {run.config['seed']}, {run.epochs} epochs, "
            f"{run.config['dataset']} -> {run.run_dir}")


# ----------------------------------------------------------------------- running
def run_sweep(runs: list[PlannedRun], results_dir: str, sweep_name: str,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Trains what is not finished, summarises what is; returns the sweep record."""
    record = {"format": FORMAT, "name": sweep_name, "results_dir": results_dir,
              "runs": {r.name: _entry(r, PENDING) for r in runs}}
    record_path = os.path.join(results_dir, SWEEPS_SUBDIR, f"{sweep_name}.json")
    for i, run in enumerate(runs, 1):
        before = state(run, results_dir)
        entry = record["runs"][run.name]
        if before == COMMITTED:
            entry["state"] = SKIPPED
            entry.update(_summary_entry(committed_summary(run, results_dir), results_dir))
            log(f"[{i}/{len(runs)}] {run.name}: finished before (its summary is in "
                f"{results_dir}, no run directory), skipped")
            atomic.write_json(record_path, record)
            continue
        if before == FINISHED:
            entry["state"] = SKIPPED
            log(f"[{i}/{len(runs)}] {run.name}: finished before, skipped")
        else:
            log(f"[{i}/{len(runs)}] {run.name}: "
                f"{'resuming' if before == INTERRUPTED else 'starting'} ({describe(run)})")
            started = time.time()
            rc = train_child(run, log)
            entry["seconds_this_sweep"] = round(time.time() - started, 1)
            entry["state"] = TRAINED if rc == 0 and state(run) == FINISHED else FAILED
            if entry["state"] == FAILED:
                entry["exit_code"] = rc
                log(f"{run.name}: bin/train failed (exit {rc}); see {_log_path(run)}")
        if entry["state"] != FAILED:
            entry.update(_summarise(run, results_dir, log))
        atomic.write_json(record_path, record)
    record["path"] = record_path
    return record


def _entry(run: PlannedRun, run_state: str) -> dict[str, Any]:
    return {"state": run_state, "run_dir": run.run_dir, "flagfile": run.flagfile,
            "beta": run.beta, "seed": run.seed, "epochs": run.epochs,
            "train_args": list(run.args)}


def _log_path(run: PlannedRun) -> str:
    return os.path.join(os.path.dirname(run.run_dir), LOGS_SUBDIR, f"{run.name}.log")


def train_app() -> str:
    """bin/train of this checkout, else the installed `train` script."""
    if os.path.isfile(TRAIN):
        return TRAIN
    installed = shutil.which("train")
    if installed is None:
        raise FileNotFoundError(f"neither {TRAIN} nor an installed `train` script exists")
    return installed


def train_child(run: PlannedRun, log: Callable[[str], None]) -> int:
    """bin/train in a child process (one TensorFlow per run), its output appended to
    `<runs_dir>/logs/<name>.log` and passed on line by line."""
    path = _log_path(run)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        command = [sys.executable, train_app(), *run.args]
        out.write(f"$ {' '.join(command[1:])}\n")
        out.flush()
        child = subprocess.Popen(command, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in child.stdout:
            out.write(line)
            out.flush()
            if not TF_NOISE.match(line):
                log(f"  {run.name}: {line.rstrip()}")
        return child.wait()


def _summarise(run: PlannedRun, results_dir: str, log: Callable[[str], None]) -> dict:
    """Writes the run's summary unless an identical one (same metrics and progress) is
    there; returns what the sweep record keeps of it."""
    path = run_summary.summary_path(results_dir, run.name)
    metrics = atomic.read_json(os.path.join(run.run_dir, run_summary.METRICS))
    current = _existing(path)
    same_draws = current is not None and all(
        current.get(key) == run_summary.read_predictive_errors(run.run_dir, metrics, split)
        for split, (_, key) in run_summary.PREDICTIVE_SPLITS.items())
    if same_draws and current.get("metrics") == metrics and current.get(
            "progress") == run_summary.read_progress(run.run_dir):
        summary = current
    else:
        summary = run_summary.build_summary(run.run_dir, run.name)
        run_summary.write_summary(results_dir, summary)
        log(f"{run.name}: summary -> {path}")
    return _summary_entry(summary, results_dir)


def _summary_entry(summary: dict, results_dir: str) -> dict[str, Any]:
    wall = sum(r.get("seconds", 0.0) for r in summary["progress"])
    return {"summary": run_summary.summary_path(results_dir, summary["name"]),
            "test_error": summary["metrics"]["test_error"], "train_seconds": round(wall, 1)}


def _existing(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    try:
        return atomic.read_json(path)
    except json.JSONDecodeError:
        return None  # rewritten below

