"""`bin/train` end to end on the embedded data: outputs, resume after a kill, bad input."""

import json
import os
import re
import signal
import sys

import numpy as np
import pytest

from deepvib.data import load_splits
from deepvib.training.trainer import KILL_AFTER_EPOCH_ENV
from tests.helpers import forked
from tests.helpers.progress import progress_value

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "bin", "train")
TINY = ["--dataset=mnist_5k", "--hidden_units=32", "--bottleneck_dim=4", "--eval_samples=3",
        "--batch_size=200", "--learning_rate=1e-3", "--ema_decay=0", "--nojit_compile"]


def run_train(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return forked.run([sys.executable, TRAIN, *TINY, *args], cwd=ROOT, env=env, timeout=300)


def read_progress(run):
    with open(run / "progress.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def check_vib_metrics(metrics: dict, last_epoch: dict) -> None:
    """metrics.json of the tiny VIB (eval_samples=3, no weight averaging) after 2 epochs."""
    assert metrics["epochs"] == 2 and metrics["eval_samples"] == 3
    test = metrics["test"]
    # The headline numbers are the test split's evaluation, each under its own name.
    assert metrics["test_error"] == test["error_3sample"]
    assert metrics["test_error_1shot"] == test["error_1shot"]
    assert metrics["test_error_mean"] == test["error_mean"]
    assert metrics["izx_upper_bits"] == test["kl_bits"]
    assert metrics["izy_lower_bits"] == test["izy_lower_bits"]
    # Eq. 12 with eq. 11: I(Z;Y) >= H(Y) - CE / ln 2, H(Y) of the 4,000 training labels.
    counts = np.bincount(load_splits("mnist_5k")["train"].labels, minlength=10)
    h_y = -np.sum(counts / counts.sum() * np.log2(counts / counts.sum()))
    assert metrics["izy_lower_bits"] == pytest.approx(h_y - test["ce"] / np.log(2), rel=1e-5)
    assert test["kl_bits"] == pytest.approx(test["kl_nats"] / np.log(2), rel=1e-5)
    # 40 steps of a 32-unit VIB: well below chance (0.9), measured 0.23 (seeded).
    assert metrics["test_error"] < 0.5 and metrics["train"]["error_3sample"] < 0.5
    assert 0 < metrics["izy_lower_bits"] < metrics["izx_upper_bits"]
    # The last epoch's evaluation saw the same weights and the same test split: its
    # deterministic numbers (z = posterior mean, analytic KL) equal the final ones.
    assert progress_value(last_epoch, "error_mean") == pytest.approx(test["error_mean"],
                                                                    abs=1e-6)
    assert progress_value(last_epoch, "kl_bits") == pytest.approx(test["kl_bits"], rel=1e-5)
    for metric in ("error_3sample", "error_1shot"):
        progress_value(last_epoch, metric)  # reported every epoch
    progress_value(last_epoch, "loss", "train")


def test_one_epoch_job_writes_its_outputs_then_resumes_after_a_kill(tmp_path):
    run = tmp_path / "run"
    killed = run_train(f"--output_dir={run}", "--epochs=2",
                       env_extra={KILL_AFTER_EPOCH_ENV: "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [r["epoch"] for r in read_progress(run)] == [1]
    assert not (run / "metrics.json").exists()  # the run did not finish
    assert "--epochs=2" in (run / "flags.txt").read_text()
    assert not [p for p in os.listdir(run) if p.startswith(".tmp")]

    resumed = run_train(f"--output_dir={run}", "--epochs=2")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    progress = read_progress(run)
    assert [r["epoch"] for r in progress] == [1, 2]
    assert "epoch 2/2" in resumed.stdout and "epoch 1/2" not in resumed.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    check_vib_metrics(metrics, progress[-1])
    assert f"test error: {100 * metrics['test_error']:.2f}%" in resumed.stdout
    assert json.loads((run / "config.json").read_text())["model"]["bottleneck_dim"] == 4
    assert os.listdir(run / "tensorboard")

    again = run_train(f"--output_dir={run}", "--epochs=2")  # finished: nothing to train
    assert again.returncode == 0, again.stderr
    assert not re.search(r"^epoch \d+/2", again.stdout, re.M)
    assert [r["epoch"] for r in read_progress(run)] == [1, 2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--beta=-1"], "beta must be >= 0"),
        (["--bottleneck_dim=0"], "bottleneck_dim must be >= 1"),
        (["--eval_samples=0"], "eval_samples must be >= 1"),
        (["--dataset=mnist", "--data_dir=/nonexistent/mnist"], "does not exist"),
        (["--epochs=0"], "epochs must be >= 1"),
        (["--steps_per_execution=0"], "steps_per_execution must be >= 1"),
        (["--model=bayes"], "model"),
        (["--dataset=cifar10"], "dataset"),
    ],
)
def test_bad_input_is_one_clear_message_and_nonzero_exit(tmp_path, args, message):
    run = tmp_path / "run"
    result = run_train(f"--output_dir={run}", *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not run.exists() or not os.listdir(run)  # nothing half-written


def test_output_dir_of_a_different_run_is_refused_and_left_alone(tmp_path):
    run = tmp_path / "run"
    first = run_train(f"--output_dir={run}", "--epochs=1")
    assert first.returncode == 0, first.stderr
    before = {p: os.path.getmtime(run / p) for p in os.listdir(run)}
    other = run_train(f"--output_dir={run}", "--epochs=1", "--beta=0.01")
    assert other.returncode == 2
    assert "different config" in other.stderr and "model.beta" in other.stderr
    assert {p: os.path.getmtime(run / p) for p in os.listdir(run)} == before

    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    refused = run_train(f"--output_dir={stranger}", "--epochs=1")
    assert refused.returncode == 2 and "not empty" in refused.stderr
    assert os.listdir(stranger) == ["notes.txt"]
