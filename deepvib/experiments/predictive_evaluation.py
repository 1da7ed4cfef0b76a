"""bin/evaluate's experiment: trained VIB runs' S-sample errors over repeated draws.

For each run directory: the moving-average weights of its last checkpoint, the real test split
of its dataset (also for runs trained with a validation split) or, with `split="validation"`,
the run's own validation split (the last `validation_size` training examples), and
`deepvib.evaluation.predictive_draws.predictive_errors`, with a noise stream of its own (from
the run's name). Written atomically to `<run>/predictive_errors.json` (validation:
`predictive_errors_validation.json`) with the split and the number of epochs the run had
trained, which `run_summary` folds into the run's summary while it still describes the run's
final weights; with a results directory the run's committed summary is rewritten at once, so
`bin/report` draws the new numbers from `results/` like every other (Table 1 only the test
split's).
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Sequence
from typing import Any

from deepvib.experiments import run_summary
from deepvib.training import atomic

SPLITS = tuple(run_summary.PREDICTIVE_SPLITS)


@dataclasses.dataclass(frozen=True)
class Job:
    model_dir: str
    name: str
    epochs: int  # metrics.json's: the training the evaluated weights have had
    split: str  # "test" or "validation"
    examples: Any  # deepvib.data Split: the real test split, or the run's validation split


def prepare(model_dirs: Sequence[str], samples: Sequence[int], draws: int, seed: int,
            data_dir: str | None, results_dir: str | None,
            split: str = "test") -> tuple[list[Job], list[int]]:
    """Checks every run, the arguments and the data before any evaluation; returns the jobs
    and the distinct S values."""
    from deepvib.data.sources import load_split, load_splits
    from deepvib.evaluation.predictive_draws import check_arguments
    from deepvib.training import run_dir

    samples = check_arguments(samples, draws, seed)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if results_dir is not None and not os.path.isdir(results_dir):
        raise FileNotFoundError(f"--results_dir={results_dir} does not exist")
    names = [os.path.basename(os.path.normpath(d)) for d in model_dirs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"runs share the base name(s) {twice}; their summaries would "
                         "overwrite each other")
    # (dataset, data_dir, validation_size or 0) -> the examples to evaluate
    splits: dict[tuple[str, str | None, int], Any] = {}
    jobs = []
    for d, name in zip(model_dirs, names, strict=True):
        config = run_dir.load_config(d)
        if config.model.model != "vib":
            raise ValueError(f"{d} is a {config.model.model} run: only VIB runs have a "
                             "sampled predictive to evaluate")
        metrics_path = os.path.join(d, run_summary.METRICS)
        if not os.path.isfile(metrics_path):
            raise ValueError(f"{d} has not finished (no {run_summary.METRICS})")
        run_dir.latest_checkpoint_name(d)  # raises RunDirError without a checkpoint
        if results_dir is not None and not os.path.isfile(
                run_summary.summary_path(results_dir, name)):
            raise FileNotFoundError(
                f"{run_summary.summary_path(results_dir, name)} does not exist: --results_dir "
                "updates the summaries of runs already in it (bin/sweep writes them)")
        if split == "validation" and not config.validation_size:
            raise ValueError(f"{d} was trained without a validation split "
                             "(--validation_size=0): evaluate it on the test split")
        key = (config.dataset, data_dir or config.data_dir,
               config.validation_size if split == "validation" else 0)
        if key not in splits:
            # load_splits names the held-out training examples "test" (its real test split
            # is "final_test"), so the trainer's selection never sees the test set.
            splits[key] = (load_splits(*key)["test"] if split == "validation"
                           else load_split(config.dataset, "test", key[1]))
        epochs = atomic.read_json(metrics_path).get("epochs")
        jobs.append(Job(d, name, epochs, split, splits[key]))
    return jobs, samples


def evaluate_run(job: Job, samples: Sequence[int], draws: int, seed: int,
                 results_dir: str | None) -> dict[str, Any]:
    from deepvib.data import to_unit_float
    from deepvib.evaluation.predictive_draws import predictive_errors
    from deepvib.training import run_dir

    model, config = run_dir.load_model(job.model_dir)
    stream = zlib.crc32(job.name.encode("utf-8"))
    result = predictive_errors(model, to_unit_float(job.examples.images), job.examples.labels,
                               samples, draws, seed, stream=stream)
    result.update({"split": job.split, "dataset": config.dataset, "trained_epochs": job.epochs,
                   "checkpoint": run_dir.latest_checkpoint_name(job.model_dir),
                   "averaged_weights": config.model.ema_decay > 0})
    filename, _ = run_summary.PREDICTIVE_SPLITS[job.split]
    atomic.write_json(os.path.join(job.model_dir, filename), result)
    if results_dir is not None:
        run_summary.write_summary(results_dir, run_summary.build_summary(job.model_dir, job.name))
    return result
