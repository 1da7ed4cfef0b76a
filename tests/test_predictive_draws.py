"""The S-sample predictive's test error over repeated draws (`deepvib.evaluation.
predictive_draws`) and `bin/evaluate`, which folds it into run summaries and Table 1.

The error over draws is checked against an independent NumPy simulation of the same predictive
(posterior mean and standard deviation, decoder weights, fresh Gaussian draws, mean of S
softmaxes) on a tiny VIB whose posterior is wide enough for sampling to matter.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from deepvib.data import to_unit_float
from deepvib.data.sources import load_split, load_splits
from deepvib.evaluation.predictive_draws import predictive_errors
from deepvib.experiments import reproduction_report as report
from deepvib.experiments import run_summary
from deepvib.models import ModelConfig, build_model
from deepvib.training import run_dir
from deepvib.training.config import TrainConfig
from deepvib.training.trainer import train
from tests.helpers import forked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVALUATE = os.path.join(ROOT, "bin", "evaluate")
REPORT = os.path.join(ROOT, "bin", "report")


@pytest.fixture(scope="module")
def wide_vib():
    """A tiny VIB (K=4) whose posterior std is softplus(6 - 5) = 1.31, labels = its mean-mode
    predictions (so the error comes from sampling alone)."""
    tf.keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(model="vib", hidden_units=(16,), bottleneck_dim=4,
                                    beta=1e-3, eval_samples=12))
    images = np.random.default_rng(0).uniform(size=(300, 28, 28, 1)).astype(np.float32)
    model.posterior(tf.constant(images[:1]))  # build
    dense = model.posterior_layer.get_layer("posterior_params")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 20, np.concatenate([bias[:4], np.full(4, 6.0, np.float32)])])
    posterior = model.posterior(tf.constant(images))
    mu, sd = posterior.mean().numpy(), posterior.stddev().numpy()
    w, b = (v.numpy() for v in model.decoder.weights)
    labels = np.argmax(mu @ w + b, axis=1)
    return model, images, labels, (mu, sd, w, b)


def simulated_error(params, labels, samples: int, repeats: int, seed: int = 1) -> float:
    """NumPy: mean over `repeats` of the error of the mean of `samples` softmaxes."""
    mu, sd, w, b = params
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(repeats):
        z = mu + sd * rng.standard_normal((samples, *mu.shape))
        logits = z @ w + b
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        errors.append(np.mean(p.mean(0).argmax(-1) != labels))
    return float(np.mean(errors))


def test_the_error_over_draws_agrees_with_an_independent_simulation(wide_vib):
    model, images, labels, params = wide_vib
    result = predictive_errors(model, images, labels, samples=(1, 12), draws=30, seed=0,
                               batch_size=128)
    assert result["num_examples"] == 300 and result["draws"] == 30
    for s in (1, 12):
        entry = result["samples"][str(s)]
        assert len(entry["errors"]) == 30
        assert entry["mean"] == pytest.approx(np.mean(entry["errors"]))
        assert entry["std"] > 0  # fresh draws each time
        expected = simulated_error(params, labels, s, repeats=300)
        assert abs(entry["mean"] - expected) < 0.012, (s, entry["mean"], expected)
    # Averaging softmaxes over 12 samples errs far less than one sample does.
    assert result["samples"]["12"]["mean"] < 0.6 * result["samples"]["1"]["mean"]


def test_the_draws_are_seeded_per_seed_and_stream(wide_vib):
    model, images, labels, _ = wide_vib
    first = predictive_errors(model, images, labels, (1,), draws=3, seed=5)
    again = predictive_errors(model, images, labels, (1,), draws=3, seed=5)
    other_seed = predictive_errors(model, images, labels, (1,), draws=3, seed=6)
    other_stream = predictive_errors(model, images, labels, (1,), draws=3, seed=5, stream=1)
    assert first == again
    for other in (other_seed, other_stream):
        assert first["samples"]["1"]["errors"] != other["samples"]["1"]["errors"]


@pytest.mark.parametrize("kwargs, message", [
    ({"samples": ()}, "samples must be"),
    ({"samples": (0,)}, "samples must be"),
    ({"draws": 0}, "draws must be"),
    ({"seed": -1}, "seed must be"),
])
def test_bad_arguments(wide_vib, kwargs, message):
    model, images, labels, _ = wide_vib
    with pytest.raises(ValueError, match=message):
        predictive_errors(model, images, labels, **{"samples": (1,), "draws": 2, **kwargs})


def tiny_config(path: str, model: str = "vib") -> TrainConfig:
    config = ModelConfig(model=model, hidden_units=(32,), bottleneck_dim=4,
                         beta=1e-3 if model == "vib" else 0.0,
                         eval_samples=12 if model == "vib" else 1, ema_decay=0.9)
    return TrainConfig(model=config, output_dir=path, dataset="mnist_5k", epochs=1,
                       batch_size=256, learning_rate=1e-3, jit_compile=False)


def test_bin_evaluate_writes_the_run_and_its_summary_and_the_report_shows_it(tmp_path):
    run = str(tmp_path / "tiny_vib")
    train(tiny_config(run), log=lambda line: None)
    results = tmp_path / "results"
    run_summary.write_summary(str(results), run_summary.build_summary(run))
    proc = forked.run([sys.executable, EVALUATE, f"--model_dirs={run}", "--samples=1,12,1024",
                       "--draws=3", f"--results_dir={results}"], cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "S=12:" in proc.stdout
    saved = run_dir.atomic.read_json(os.path.join(run, run_summary.PREDICTIVE_ERRORS))
    assert set(saved["samples"]) == {"1", "12", "1024"} and saved["checkpoint"] == "ckpt-1"
    # Recomputed here: the moving-average weights on the test split, with the run's own noise
    # stream.
    test = load_split("mnist_5k", "test")
    assert saved["num_examples"] == len(test.labels)
    model, _ = run_dir.load_model(run, averaged=True)
    again = predictive_errors(model, to_unit_float(test.images), test.labels, (1, 12, 1024), 3,
                              seed=0, stream=saved["stream"])
    assert again["samples"] == saved["samples"]
    summary = run_summary.load_summaries([str(results)])[0]
    assert summary.name == "tiny_vib"
    assert summary.error_over_draws(12) == pytest.approx(saved["samples"]["12"]["mean"])
    assert summary.error_over_draws(7) is None
    # The run directory is not needed any more: the report reads the summary alone.
    os.rename(run, str(tmp_path / "gone"))
    out = tmp_path / "report"
    proc = forked.run([sys.executable, REPORT, f"--results_dirs={results}",
                       f"--output_dir={out}"], cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = run_summary.atomic.read_json(str(out / "report.json"))
    (row,) = [r for r in report["table1"] if r["runs"]]
    assert row["over_draws"]["1024"]["mean"] == pytest.approx(
        saved["samples"]["1024"]["mean"])
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| 12-sample, mean over draws (%) | 1024-sample, mean over draws (%) |" in md
    assert f"{100 * saved['samples']['12']['mean']:.3f}" in md
    table = md.split("## Table 1")[1].split("\n\n")[1].splitlines()
    assert len(table) == 2 + 5 and len({line.count("|") for line in table}) == 1


def test_bin_evaluate_on_the_validation_split_stays_out_of_table1(tmp_path):
    """--split=validation: the run's own held-out training examples (for choosing a recipe),
    kept in a file and summary field of their own: the test split's numbers stay, and Table 1
    shows only those."""
    run = str(tmp_path / "tiny_vib")
    train(dataclasses.replace(tiny_config(run), validation_size=500), log=lambda line: None)
    results = tmp_path / "results"
    run_summary.write_summary(str(results), run_summary.build_summary(run))
    saved = {}
    for split in ("test", "validation"):
        proc = forked.run([sys.executable, EVALUATE, f"--model_dirs={run}", "--samples=12",
                           "--draws=2", f"--split={split}", f"--results_dir={results}"],
                          cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"{split} error over 2 draws" in proc.stdout
        filename, _ = run_summary.PREDICTIVE_SPLITS[split]
        saved[split] = run_dir.atomic.read_json(os.path.join(run, filename))
        assert saved[split]["split"] == split
    # The test split is the real one, not the 500 images held out beside training.
    assert saved["validation"]["num_examples"] == 500
    assert saved["test"]["num_examples"] == len(load_split("mnist_5k", "test").labels)
    held_out = load_splits("mnist_5k", None, 500)["test"]
    model, _ = run_dir.load_model(run, averaged=True)
    again = predictive_errors(model, to_unit_float(held_out.images), held_out.labels, (12,), 2,
                              seed=0, stream=saved["validation"]["stream"])
    assert again["samples"] == saved["validation"]["samples"]
    summary = run_summary.load_summaries([str(results)])[0]
    means = {split: saved[split]["samples"]["12"]["mean"] for split in saved}
    assert summary.error_over_draws(12) == pytest.approx(means["test"])
    assert summary.error_over_draws(12, "validation") == pytest.approx(means["validation"])
    assert report.over_draws([summary])["12"]["per_seed"] == [summary.error_over_draws(12)]
    # The report: the run in the selection table (its validation draws), not in Table 1.
    (row,) = report.selection_rows([summary])
    assert row["validation_errors"] == [pytest.approx(means["validation"])]
    assert row["measured_as"] == ["12-sample, mean of 2 draws"]
    assert all(not r["runs"] for r in report.table1([summary]))


def test_numbers_of_earlier_weights_are_left_out_of_the_summary(tmp_path):
    """A run trained further after bin/evaluate: its summary drops the stale numbers."""
    run = str(tmp_path / "tiny_vib")
    train(tiny_config(run), log=lambda line: None)
    path = os.path.join(run, run_summary.PREDICTIVE_ERRORS)
    entry = {"samples": {"12": {"mean": 0.5, "std": 0.0, "errors": [0.5]}}}
    run_dir.atomic.write_json(path, {**entry, "trained_epochs": 1})
    assert run_summary.build_summary(run)["predictive_errors"]["trained_epochs"] == 1
    run_dir.atomic.write_json(path, {**entry, "trained_epochs": 0})
    assert "predictive_errors" not in run_summary.build_summary(run)


@pytest.mark.parametrize("args, message", [
    (["--seed=-1"], "seed must be"),
    (["--draws=0"], "draws must be"),
    (["--samples=0"], "samples must be"),
    (["--results_dir={tmp}"], "does not exist: --results_dir updates"),
    (["--split=validation"], "trained without a validation split"),
])
def test_bin_evaluate_bad_arguments_exit_2_before_evaluating(tmp_path, args, message):
    run = str(tmp_path / "tiny_vib")
    run_dir.prepare(tiny_config(run))
    run_dir.atomic.write_json(os.path.join(run, run_summary.METRICS), {"epochs": 1})
    model = build_model(tiny_config(run).model)
    model.predictive_log_probs(tf.zeros([1, 28, 28, 1]))
    run_dir.checkpoint_manager(run, tf.train.Checkpoint(model=model)).save(1)
    args = [a.format(tmp=tmp_path) for a in args]
    proc = forked.run([sys.executable, EVALUATE, f"--model_dirs={run}", *args], cwd=ROOT,
                      timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not os.path.exists(os.path.join(run, run_summary.PREDICTIVE_ERRORS))


def test_bin_evaluate_refuses_a_deterministic_run_before_evaluating(tmp_path):
    run = str(tmp_path / "det")
    run_dir.prepare(tiny_config(run, "deterministic"))
    proc = forked.run([sys.executable, EVALUATE, f"--model_dirs={run}"], cwd=ROOT, timeout=300)
    assert proc.returncode == 2
    assert "only VIB runs" in proc.stderr
    assert not os.path.exists(os.path.join(run, run_summary.PREDICTIVE_ERRORS))
