"""bin/evaluate's experiment: trained VIB runs' S-sample test errors over repeated draws.

For each run directory: the moving-average weights of its last checkpoint, the real test split
of its dataset (also for runs trained with a validation split), and
`deepvib.evaluation.predictive_draws.predictive_errors`. Written atomically to
`<run>/predictive_errors.json`, which `run_summary.build_summary` folds into the run's summary;
with a results directory the committed summary is rewritten at once, so `bin/report` draws the
new numbers from `results/` like every other.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from deepvib.experiments import run_summary
from deepvib.training import atomic


def check_runs(model_dirs: Sequence[str], samples: Sequence[int], draws: int,
               results_dir: str | None) -> list[str]:
    """Every directory a finished VIB run with a checkpoint, before any evaluation."""
    from deepvib.evaluation.predictive_draws import check_samples
    from deepvib.training import run_dir

    check_samples(samples, draws)
    if results_dir is not None and not os.path.isdir(results_dir):
        raise FileNotFoundError(f"--results_dir={results_dir} does not exist")
    for d in model_dirs:
        config = run_dir.load_config(d)
        if config.model.model != "vib":
            raise ValueError(f"{d} is a {config.model.model} run: only VIB runs have a "
                             "sampled predictive to evaluate")
        if not os.path.isfile(os.path.join(d, run_summary.METRICS)):
            raise ValueError(f"{d} has not finished (no {run_summary.METRICS})")
        run_dir.latest_checkpoint_name(d)  # raises RunDirError without a checkpoint
    return list(model_dirs)


def evaluate_run(model_dir: str, samples: Sequence[int], draws: int, seed: int,
                 data_dir: str | None, results_dir: str | None) -> dict[str, Any]:
    from deepvib.data import to_unit_float
    from deepvib.data.sources import load_split
    from deepvib.evaluation.predictive_draws import predictive_errors
    from deepvib.training import run_dir

    model, config = run_dir.load_model(model_dir)
    test = load_split(config.dataset, "test", data_dir or config.data_dir)
    result = predictive_errors(model, to_unit_float(test.images), test.labels, samples, draws,
                               seed)
    result.update({"split": "test", "dataset": config.dataset,
                   "checkpoint": run_dir.latest_checkpoint_name(model_dir),
                   "averaged_weights": config.model.ema_decay > 0})
    atomic.write_json(os.path.join(model_dir, run_summary.PREDICTIVE_ERRORS), result)
    if results_dir is not None:
        name = os.path.basename(os.path.normpath(model_dir))
        run_summary.write_summary(results_dir, run_summary.build_summary(model_dir, name))
    return result
