"""bin/sweep and bin/report end to end on a tiny sweep of the embedded data: the grid and its
dry run, an interrupted sweep resumed, a finished one skipped, and the report drawn from the
committed-style summaries alone after the run directories are deleted."""

import json
import os
import shutil
import sys

import numpy as np

from deepvib.experiments import train_flags_resolver
from deepvib.training.trainer import KILL_AFTER_EPOCH_ENV
from tests.helpers import forked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP, REPORT = os.path.join(ROOT, "bin", "sweep"), os.path.join(ROOT, "bin", "report")
TINY = ["--dataset=mnist_5k", "--hidden_units=16", "--eval_samples=3", "--batch_size=500",
        "--learning_rate=3e-3", "--ema_decay=0.5", "--nojit_compile"]


def flagfile(path, *lines):
    path.write_text("\n".join([*TINY, *lines]) + "\n")
    return str(path)


def run(app, *args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return forked.run([sys.executable, app, *args], cwd=ROOT, env=env, timeout=600)


def test_dry_run_lists_the_grid_and_bad_flags_fail_before_training(tmp_path):
    vib = flagfile(tmp_path / "vib.flags", "--model=vib", "--bottleneck_dim=4")
    det = flagfile(tmp_path / "det.flags", "--model=deterministic")
    runs = tmp_path / "runs"
    done = run(SWEEP, f"--flagfiles={vib},{det}", "--betas=1e-3,0.1", "--seeds=0,1",
               f"--runs_dir={runs}", "--dry_run", "--", "--epochs=3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    names = [line.split()[1].rstrip(":") for line in lines[:-1]]
    assert names == ["vib_beta1e-3_seed0", "vib_beta1e-3_seed1", "vib_beta1e-1_seed0",
                     "vib_beta1e-1_seed1", "det_seed0", "det_seed1"]  # no beta grid for it
    assert "vib K=4 beta=0.1, seed 1, 3 epochs" in lines[3]
    assert lines[-1] == "6 runs, 6 to train (dry run: nothing was trained)"
    assert not runs.exists()

    typo = run(SWEEP, f"--flagfiles={vib}", "--betas=1e-3", f"--runs_dir={runs}",
               "--results_dir=x", "--", "--epoch=3")
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    assert "vib_beta1e-3: bin/train would refuse its flags" in typo.stderr
    assert "epoch" in typo.stderr and not runs.exists()
    missing = run(SWEEP, f"--flagfiles={tmp_path / 'nope.flags'}", "--dry_run")
    assert missing.returncode == 2 and "nope.flags does not exist" in missing.stderr


def test_sweep_resumes_skips_and_the_report_needs_only_the_summaries(tmp_path):
    k2 = flagfile(tmp_path / "k2.flags", "--model=vib", "--bottleneck_dim=2",
                  "--covariance=full")
    det = flagfile(tmp_path / "det.flags", "--model=deterministic", "--bottleneck_dim=4")
    runs, results = tmp_path / "runs", tmp_path / "results"
    args = [f"--flagfiles={k2},{det}", "--betas=1e-3,1e-1", f"--runs_dir={runs}",
            f"--results_dir={results}", "--name=tiny", "--", "--epochs=2"]
    names = ["k2_beta1e-3", "k2_beta1e-1", "det"]

    # A K=2 run dies after its first epoch (its bin/train is killed)...
    killed = run(SWEEP, f"--flagfiles={k2}", "--betas=1e-3", *args[2:],
                 env_extra={KILL_AFTER_EPOCH_ENV: "1"})
    assert killed.returncode == 1, killed.stderr
    record = json.loads((results / "sweeps" / "tiny.json").read_text())
    assert [record["runs"][n]["state"] for n in record["runs"]] == ["failed"]
    assert "k2_beta1e-3" in record["runs"]
    assert not (results / "runs").exists()

    # ... and resumes from it in the whole sweep, which starts the two new runs.
    resumed = run(SWEEP, *args)
    assert resumed.returncode == 0, resumed.stderr
    for name in names:
        assert f"{name}: epoch 2/2" in resumed.stdout
    assert "k2_beta1e-3: resuming" in resumed.stdout
    assert "k2_beta1e-3: epoch 1/2" not in resumed.stdout
    log = (runs / "logs" / "k2_beta1e-3.log").read_text()
    assert log.count("$ ") == 2 and "resuming from" in log
    for name in names[1:]:
        assert f"{name}: starting" in resumed.stdout and f"{name}: resuming" not in (
            resumed.stdout)
        assert f"{name}: epoch 1/2" in resumed.stdout
    record = json.loads((results / "sweeps" / "tiny.json").read_text())
    assert [record["runs"][n]["state"] for n in names] == ["trained"] * 3

    summaries = {n: results / "runs" / f"{n}.json" for n in names}
    stamps = {n: p.stat().st_mtime_ns for n, p in summaries.items()}
    again = run(SWEEP, *args)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("finished before, skipped") == 3 and "epoch 2/2" not in (
        again.stdout)
    assert {n: p.stat().st_mtime_ns for n, p in summaries.items()} == stamps

    metrics = {n: json.loads((runs / n / "metrics.json").read_text()) for n in names}
    check_embedding(runs / "k2_beta1e-3", json.loads(summaries["k2_beta1e-3"].read_text()))
    shutil.rmtree(runs)
    out = tmp_path / "report"
    report = run(REPORT, f"--results_dirs={results}", f"--output_dir={out}")
    assert report.returncode == 0, report.stderr
    assert "figure1a: skipped" in report.stdout  # no K != 2 VIB runs in this sweep
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["figures"]) == {"figure1b", "figure2"}
    for png in [*saved["figures"].values(), *saved["learning_curves"].values()]:
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    (det_row,) = [r for r in saved["table1"] if r["runs"]]
    assert det_row["model"] == "deterministic" and det_row["runs"] == ["det"]
    assert det_row["test_errors"] == [metrics["det"]["test_error"]]
    assert det_row["mean"] == metrics["det"]["test_error"]
    assert f"| {100 * metrics['det']['test_error']:.2f} |" in (out / "report.md").read_text()
    for entry in saved["runs"]:
        assert entry["test_error"] == metrics[entry["name"]]["test_error"]


def check_embedding(run_dir, summary):
    """The stored posteriors are the model's (moving-average weights) on the first test
    images, to the 6 significant digits kept."""
    from deepvib.data import load_splits
    from deepvib.models.heads import posterior_scale
    from deepvib.training.run_dir import load_model

    model, _ = load_model(str(run_dir))
    test = load_splits("mnist_5k")["test"]
    e = summary["embedding"]
    n = len(e["labels"])
    assert n == 1000 and e["labels"] == test.labels[:n].tolist()
    posterior = model.posterior(test.images[:n])
    np.testing.assert_allclose(e["mean"], posterior.mean().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(e["scale_tril"], posterior_scale(posterior).numpy(), rtol=1e-5,
                               atol=1e-6)
    kernel, bias = model.decoder.get_weights()
    np.testing.assert_allclose(e["decoder_kernel"], kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(e["decoder_bias"], bias, rtol=1e-5, atol=1e-6)
    assert summary["metrics"] == json.loads((run_dir / "metrics.json").read_text())
    assert len(summary["progress"]) == 2
    from deepvib.experiments import run_summary
    from deepvib.training import run_dir as layout

    assert (run_summary.CONFIG, run_summary.METRICS, run_summary.PROGRESS,
            run_summary.FLAGS_TEXT) == (layout.CONFIG, layout.METRICS, layout.PROGRESS,
                                        layout.FLAGS_TEXT)


def test_the_remake_flags_reach_the_config(monkeypatch):
    """bin/train's --kl_estimator and --adam_epsilon, through the sampled-KL flagfile."""
    monkeypatch.chdir(ROOT)  # the flagfile includes configs/mnist_k256_fast.flags
    (resolved,) = train_flags_resolver.resolve(
        [["--flagfile=configs/mnist_k256_fast_sampled_kl.flags", "--output_dir=x"]])
    config = resolved["config"]
    assert config["model"]["kl_estimator"] == "sampled" and config["adam_epsilon"] == 1e-8
    assert config["model"]["train_samples"] == 12 and config["epochs"] == 25
    (default,) = train_flags_resolver.resolve([["--output_dir=x"]])
    assert default["config"]["model"]["kl_estimator"] == "analytic"
    assert default["config"]["adam_epsilon"] == 1e-7
