"""`bin/train` end to end on the embedded data: outputs, resume after a kill, bad input."""

import json
import os
import signal
import subprocess
import sys

import pytest

from deepvib.training.trainer import KILL_AFTER_EPOCH_ENV

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "bin", "train")
TINY = ["--dataset=mnist_5k", "--hidden_units=32", "--bottleneck_dim=4", "--eval_samples=3",
        "--batch_size=200", "--learning_rate=1e-3", "--ema_decay=0", "--nojit_compile"]


def run_train(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, TRAIN, *TINY, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def read_progress(run):
    with open(run / "progress.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


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
    assert metrics["epochs"] == 2 and 0.0 <= metrics["test_error"] <= 1.0
    for key in ("test_error_1shot", "test_error_mean", "izx_upper_bits", "izy_lower_bits"):
        assert key in metrics
    assert metrics["izx_upper_bits"] > 0
    assert f"test error: {100 * metrics['test_error']:.2f}%" in resumed.stdout
    assert json.loads((run / "config.json").read_text())["model"]["bottleneck_dim"] == 4
    assert os.listdir(run / "tensorboard")
    for key in ("loss", "ce", "kl_bits", "val_error_3sample", "val_error_1shot", "val_error_mean"):
        assert key in progress[-1], key

    again = run_train(f"--output_dir={run}", "--epochs=2")  # finished: nothing to train
    assert again.returncode == 0 and "/2  loss" not in again.stdout
    assert [r["epoch"] for r in read_progress(run)] == [1, 2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--beta=-1"], "beta must be >= 0"),
        (["--bottleneck_dim=0"], "bottleneck_dim must be >= 1"),
        (["--eval_samples=0"], "eval_samples must be >= 1"),
        (["--dataset=mnist", "--data_dir=/nonexistent/mnist"], "does not exist"),
        (["--epochs=0"], "epochs must be >= 1"),
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
