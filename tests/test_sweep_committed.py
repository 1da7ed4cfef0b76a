"""bin/sweep on a fresh machine: a run whose run directory is gone (runs/ does not move between
machines) but whose committed summary matches the planned config counts as finished; any
mismatch (config, fewer epochs) trains it again."""

import json
import os

from deepvib.experiments import sweep
from deepvib.experiments.run_summary import summary_path

CONFIG = {"model": {"model": "vib", "beta": 1e-3, "bottleneck_dim": 4}, "epochs": 3,
          "seed": 0, "dataset": "mnist_5k", "data_dir": None}


def planned(tmp_path, **overrides):
    config = {**CONFIG, **overrides, "output_dir": str(tmp_path / "runs" / "r")}
    return sweep.PlannedRun(name="r", flagfile="r.flags", beta=1e-3, seed=0, args=(),
                            run_dir=str(tmp_path / "runs" / "r"), config=config)


def commit(results, config, epochs):
    path = summary_path(str(results), "r")
    summary = {"name": "r", "config": {**config, "output_dir": "elsewhere/r"},
               "metrics": {"epochs": epochs, "test_error": 0.25},
               "progress": [{"epoch": e + 1, "seconds": 2.0} for e in range(epochs)]}
    (results / "runs").mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(summary, f)


def test_a_matching_committed_summary_counts_as_finished(tmp_path):
    results = tmp_path / "results"
    run = planned(tmp_path)
    assert sweep.state(run, str(results)) == sweep.NEW
    commit(results, CONFIG, epochs=3)
    assert sweep.state(run) == sweep.NEW  # without a results_dir nothing is committed
    assert sweep.state(run, str(results)) == sweep.COMMITTED

    lines = []
    record = sweep.run_sweep([run], str(results), "s", log=lines.append)
    entry = record["runs"]["r"]
    assert entry["state"] == sweep.SKIPPED and entry["test_error"] == 0.25
    assert entry["train_seconds"] == 6.0 and "no run directory" in lines[0]
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_a_different_or_shorter_committed_run_is_trained_again(tmp_path):
    results = tmp_path / "results"
    commit(results, {**CONFIG, "model": {**CONFIG["model"], "beta": 1e-2}}, epochs=3)
    assert sweep.state(planned(tmp_path), str(results)) == sweep.NEW
    commit(results, CONFIG, epochs=2)
    assert sweep.state(planned(tmp_path), str(results)) == sweep.NEW
    assert sweep.state(planned(tmp_path, epochs=2), str(results)) == sweep.COMMITTED


def test_a_committed_run_from_before_a_field_existed_matches_only_that_fields_old_value(
        tmp_path):
    """A summary written before `adam_epsilon` and `kl_estimator` existed is the analytic
    recipe with Keras' epsilon: it counts for that plan, not for the sampled-KL one."""
    results = tmp_path / "results"
    commit(results, CONFIG, epochs=3)
    old_recipe = planned(tmp_path, adam_epsilon=1e-7,
                         model={**CONFIG["model"], "kl_estimator": "analytic"})
    assert sweep.state(old_recipe, str(results)) == sweep.COMMITTED
    for changed in ({"adam_epsilon": 1e-8},
                    {"model": {**CONFIG["model"], "kl_estimator": "sampled"}}):
        assert sweep.state(planned(tmp_path, **changed), str(results)) == sweep.NEW


def test_new_validation_draws_rewrite_the_committed_summary(tmp_path):
    """A finished run evaluated again (here on its validation split) gets its summary
    rewritten by the next sweep, not left at the older numbers."""
    results = tmp_path / "results"
    run = planned(tmp_path)
    os.makedirs(run.run_dir)
    config = {**CONFIG, "model": {**CONFIG["model"], "model": "vib"}, "validation_size": 100}
    for name, value in (("config.json", config),
                        ("metrics.json", {"epochs": 3, "test_error": 0.02})):
        with open(os.path.join(run.run_dir, name), "w") as f:
            json.dump(value, f)
    sweep._summarise(run, str(results), log=lambda line: None)
    draws = {"samples": {"12": {"mean": 0.01}}, "trained_epochs": 3, "split": "validation"}
    with open(os.path.join(run.run_dir, "predictive_errors_validation.json"), "w") as f:
        json.dump(draws, f)
    lines = []
    sweep._summarise(run, str(results), log=lines.append)
    with open(summary_path(str(results), "r")) as f:
        assert json.load(f)["predictive_errors_validation"] == draws
    assert lines and "summary ->" in lines[0]
