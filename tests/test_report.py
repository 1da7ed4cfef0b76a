"""bin/report and its modules on hand-made run summaries (no training, no TensorFlow):
Table 1 against the runs' metrics, figures skipped rather than mixed, malformed summaries,
the progress-key reader, and the maths of Figure 2 against independent computations."""

import json
import math
import os
import statistics
import sys

import numpy as np
import pytest
from scipy import special, stats

from deepvib.experiments import reproduction_figures as figs
from deepvib.experiments import reproduction_report as report
from deepvib.experiments import run_summary
from deepvib.models import ModelConfig
from deepvib.training.config import TrainConfig
from tests.helpers import forked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "bin", "report")


def config(kind="vib", beta=1e-3, k=256, seed=0, epochs=3, lr=1e-4):
    return {
        "adam_beta1": 0.5, "batch_size": 100, "data_dir": None, "dataset": "mnist",
        "epochs": epochs, "jit_compile": True, "learning_rate": lr, "lr_decay_epochs": 2.0,
        "lr_decay_rate": 0.97, "output_dir": f"runs/x{seed}", "seed": seed,
        "strategy": "default", "validation_size": 0,
        "model": {"beta": beta if kind == "vib" else 0.0, "bottleneck_dim": k,
                  "confidence_penalty": 0.0, "covariance": "full" if k == 2 else "diag",
                  "dropout_rate": 0.5 if kind == "dropout" else 0.0, "ema_decay": 0.999,
                  "eval_samples": 12 if kind == "vib" else 1, "hidden_units": [1024, 1024],
                  "input_scaling": "symmetric", "label_entropy_bits": 3.32,
                  "label_smoothing": 0.0, "model": kind, "num_classes": 10,
                  "train_samples": 1},
    }


def summary(name, rng, old_keys=False, **kw):
    """A run summary as bin/sweep writes it, with random but consistent numbers."""
    c = config(**kw)
    vib = c["model"]["model"] == "vib"
    split = {}
    for s in ("train", "test"):
        e = float(rng.uniform(0.005, 0.05))
        split[s] = ({"error_1shot": e * 1.1, "error_12sample": e, "error_mean": e,
                     "kl_bits": float(rng.uniform(5, 50)), "izy_lower_bits": 3.0}
                    if vib else {"error": e, "loss": 0.1})
    metrics = {"model": c["model"]["model"], "dataset": "mnist", "epochs": c["epochs"],
               **split, "test_error": split["test"]["error_12sample" if vib else "error"]}
    if vib:
        metrics["test_error_1shot"] = split["test"]["error_1shot"]
    progress = []
    for epoch in range(1, c["epochs"] + 1):
        train = {"error_1shot" if vib else "error": 0.1 / epoch, "kl_bits": 30.0 / epoch,
                 "loss": 1.0 / epoch}
        test = {"error_12sample" if vib else "error": 0.09 / epoch, "error_1shot": 0.1 / epoch,
                "error_mean": 0.09 / epoch, "kl_bits": 20.0 / epoch, "loss": 0.9 / epoch}
        record = {"epoch": epoch, "seconds": 10.0, "learning_rate": 1e-4}
        if old_keys:  # Keras' names: bare for training, val_ for the held-out split
            record.update({**train, **{f"val_{k}": v for k, v in test.items()}})
        else:
            record.update({**{f"train_{k}": v for k, v in train.items()},
                           **{f"test_{k}": v for k, v in test.items()}})
        progress.append(record)
    out = {"format": run_summary.FORMAT, "name": name, "run_dir": f"runs/{name}", "config": c,
           "metrics": metrics, "flags_text": "--model=vib\n", "progress": progress}
    if vib and c["model"]["bottleneck_dim"] == 2:
        n = 50
        out["embedding"] = {
            "labels": rng.integers(0, 10, n).tolist(), "mean": rng.normal(size=(n, 2)).tolist(),
            "scale_tril": np.tril(rng.uniform(0.05, 0.3, (n, 2, 2))).tolist(),
            "decoder_kernel": rng.normal(size=(2, 10)).tolist(),
            "decoder_bias": rng.normal(size=10).tolist(), "split": "test",
            "indices": list(range(n))}
    return out


def write_results(results_dir, summaries):
    for s in summaries:
        run_summary.write_summary(str(results_dir), s)


def full_set(rng):
    """Every table row and figure: 3 seeds of the deterministic baseline, a 4-beta sweep
    for K=256 and K=2 (the old progress names for half of them), one longer VIB run."""
    runs = [summary(f"det_seed{s}", rng, kind="deterministic", seed=s) for s in range(3)]
    for k in (256, 2):
        for i, beta in enumerate((1e-4, 1e-3, 1e-2, 1e-1)):
            runs.append(summary(f"k{k}_beta{beta:g}", rng, old_keys=i % 2 == 0, k=k,
                                beta=beta))
    runs.append(summary("k256_long", rng, epochs=5, beta=1e-3))
    return runs


def run_report(*args):
    return forked.run([sys.executable, REPORT, *args], cwd=ROOT, timeout=120)


def test_report_draws_every_figure_and_table1_equals_the_runs_metrics(tmp_path):
    runs = full_set(np.random.default_rng(0))
    write_results(tmp_path / "results", runs)
    out = tmp_path / "report"
    done = run_report(f"--results_dirs={tmp_path / 'results'}", f"--output_dir={out}")
    assert done.returncode == 0, done.stderr
    saved = json.loads((out / "report.json").read_text())
    assert saved["skipped_figures"] == {}
    for name in report.FIGURE_FILES.values():
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert sorted(os.listdir(out / "curves")) == sorted(f"{r['name']}.png" for r in runs)

    rows = {(r["model"], r["recipe"] is not None and "5 epochs" in r["recipe"]): r
            for r in saved["table1"]}
    det = rows[("deterministic", False)]
    errors = [r["metrics"]["test_error"] for r in runs[:3]]
    assert det["test_errors"] == errors and det["seeds"] == [0, 1, 2]
    assert det["mean"] == pytest.approx(statistics.fmean(errors), rel=1e-12)
    assert det["std"] == pytest.approx(statistics.stdev(errors), rel=1e-12)
    # The 3-epoch and the 5-epoch VIB runs are two recipes: two rows, never averaged.
    assert rows[("vib", True)]["test_errors"] == [runs[-1]["metrics"]["test_error"]]
    assert rows[("vib", False)]["runs"] == ["k256_beta0.001"]
    assert rows[("vib", True)]["std"] is None
    assert [r["paper_percent"] for r in saved["table1"] if r["model"] == "dropout"] == [1.34]
    md = (out / "report.md").read_text()
    assert (f"| {100 * det['mean']:.2f} ± {100 * det['std']:.2f} | "
            f"{', '.join(f'{100 * e:.2f}' for e in errors)} | 1.38 |") in md
    assert "| Dropout | not run |" in md and "| 1.13 |" in md
    assert "5 epochs, batch 100, Adam lr 0.0001 (β1 0.5)" in md
    # The β table holds what Figure 1 plots: one row per (K, β) of each K's 4-β series.
    sweep = {(r["bottleneck_dim"], r["beta"]): r for r in saved["beta_sweep"]}
    assert sorted(sweep) == sorted((k, b) for k in (2, 256) for b in (1e-4, 1e-3, 1e-2, 1e-1))
    for run in runs[3:-1]:
        m, row = run["metrics"], sweep[(run["config"]["model"]["bottleneck_dim"],
                                         run["config"]["model"]["beta"])]
        assert row["seeds"] == 1
        assert row["test error S (%)"] == pytest.approx(100 * m["test"]["error_12sample"])
        assert row["train error 1 (%)"] == pytest.approx(100 * m["train"]["error_1shot"])
        assert row["I(Z;X) test (bits)"] == pytest.approx(m["test"]["kl_bits"])
        assert row["I(Z;Y) train (bits)"] == pytest.approx(m["train"]["izy_lower_bits"])
    k256 = sweep[(256, 1e-3)]
    assert (f"| 256 | 1e-3 | 1 | {k256['train error S (%)']:.2f} | "
            f"{k256['train error 1 (%)']:.2f} | {k256['test error S (%)']:.2f} |") in md


def test_a_figure_without_its_runs_is_skipped_with_the_reason(tmp_path):
    rng = np.random.default_rng(1)
    vae = summary("vae", rng, kind="deterministic")
    vae["config"]["model"] = {"model": "a_future_model", "latent_dim": 10}
    vae["metrics"] = {"elbo": -100.0}
    write_results(tmp_path / "results", [summary("det", rng, kind="deterministic"),
                                         summary("vib", rng, beta=1e-3), vae])
    out = tmp_path / "report"
    done = run_report(f"--results_dirs={tmp_path / 'results'}", f"--output_dir={out}")
    assert done.returncode == 0, done.stderr
    assert "neither classifiers nor VAEs, left out of the report: vae" in done.stdout
    assert ("figure1a: skipped: Figure 1(a) (VIB, K ≠ 2) needs runs at 2 or more values of β"
            in done.stdout)
    assert "figure2: skipped: no runs with β > 0 for Figure 2 (VIB, K = 2" in done.stdout
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["skipped_figures"]) == set(report.FIGURE_FILES)
    assert not any((out / f).exists() for f in report.FIGURE_FILES.values())
    assert "Not drawn: no runs with β > 0 for Figure 1(b) (VIB, K = 2)." in (
        (out / "report.md").read_text())
    assert sorted(os.listdir(out / "curves")) == ["det.png", "vib.png"]


def test_figure_series_take_one_recipe_and_say_what_they_leave_out():
    rng = np.random.default_rng(2)
    runs = [run_summary.from_dict(summary(f"a{b}", rng, beta=b), "a")
            for b in (1e-3, 1e-2, 1e-1)]
    runs += [run_summary.from_dict(summary(f"b{b}", rng, beta=b, lr=1e-3), "b")
             for b in (1e-3, 1e-2)]
    runs.append(run_summary.from_dict(summary("zero", rng, beta=0.0), "c"))
    series = report.beta_series(runs, lambda r: True, "test")
    assert [r.name for r in series] == ["a0.001", "a0.01", "a0.1"]
    betas, mean, _ = report.by_beta(series, lambda r: r.test_error)
    assert betas.tolist() == [1e-3, 1e-2, 1e-1]
    assert mean.tolist() == [r.test_error for r in series]
    assert "3 other VIB run(s)" in report._footnote_series(series, 3)


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.update(format="deepvib.attack/1"), "is not a deepvib.run_summary/1"),
    (lambda s: s["metrics"].pop("test_error"), "lacks the field 'test_error'"),
    (lambda s: s["config"]["model"].update(bottleneck_dim="two"), "bottleneck_dim is not"),
    (lambda s: s["progress"].append({"loss": 1.0}), "progress is not a list"),
    (lambda s: s["embedding"].update(mean=[[0.0, 0.0]]), "embedding.mean is not [50, 2]"),
])
def test_malformed_summaries_are_one_clear_error_exit_2(tmp_path, mutate, message):
    bad = summary("bad", np.random.default_rng(3), k=2)
    mutate(bad)
    write_results(tmp_path / "results", [bad])
    done = run_report(f"--results_dirs={tmp_path / 'results'}",
                      f"--output_dir={tmp_path / 'out'}")
    assert done.returncode == 2
    assert message in done.stderr and "bad.json" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreadable_or_missing_inputs_exit_2(tmp_path):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    (runs / "broken.json").write_text("{not json")
    done = run_report(f"--results_dirs={tmp_path / 'results'}", f"--output_dir={tmp_path}")
    assert done.returncode == 2 and "is not valid JSON" in done.stderr
    empty = run_report(f"--results_dirs={tmp_path / 'nothing'}", f"--output_dir={tmp_path}")
    assert empty.returncode == 2 and "does not exist" in empty.stderr
    typo = run_report(f"--results_dir={tmp_path}", f"--output_dir={tmp_path}")
    assert typo.returncode != 0 and "Traceback" not in typo.stderr


def test_progress_records_read_the_same_under_old_and_new_names():
    old = {"epoch": 3, "seconds": 2.0, "learning_rate": 1e-4, "loss": 1.5, "kl_bits": 40.0,
           "val_error_12sample": 0.02, "val_kl_bits": 30.0}
    new = {"epoch": 3, "seconds": 2.0, "learning_rate": 1e-4, "train_loss": 1.5,
           "train_kl_bits": 40.0, "test_error_12sample": 0.02, "test_kl_bits": 30.0}
    assert run_summary.progress_record(old, "test") == new
    assert run_summary.progress_record(new, "test") == new
    assert run_summary.progress_record(old, "validation")["validation_kl_bits"] == 30.0
    assert run_summary.held_out_name({"validation_size": 10}) == "validation"
    rng = np.random.default_rng(4)
    a = run_summary.from_dict(summary("a", rng, old_keys=True), "a")
    b = run_summary.from_dict(summary("a", rng, old_keys=False), "b")
    assert a.progress == b.progress


def test_ellipse_is_the_95_percent_region_of_the_gaussian():
    rng = np.random.default_rng(5)
    mean = rng.normal(size=(7, 2))
    tril = np.tril(rng.uniform(0.1, 2.0, (7, 2, 2)))
    points = figs.ellipse_points(mean, tril, num_points=16)
    assert points.shape == (7, 16, 2)
    cov = tril @ np.transpose(tril, (0, 2, 1))
    d = points - mean[:, None, :]
    mahalanobis2 = np.einsum("npi,nij,npj->np", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(mahalanobis2, stats.chi2.ppf(0.95, df=2), rtol=1e-10)
    x0, x1, y0, y1 = figs.embedding_extent(mean, tril, pad=0.0)
    assert x0 <= points[..., 0].min() and points[..., 0].max() <= x1
    assert y0 <= points[..., 1].min() and points[..., 1].max() <= y1
    dense = figs.ellipse_points(mean, tril, num_points=4000)  # the box is tight
    assert dense[..., 0].min() == pytest.approx(x0, abs=1e-4)
    assert dense[..., 1].max() == pytest.approx(y1, abs=1e-4)


def test_decoder_entropy_matches_scipy():
    rng = np.random.default_rng(6)
    kernel, bias = rng.normal(size=(2, 10)) * 5, rng.normal(size=10)
    z = rng.normal(size=(4, 3, 2)) * 3
    expected = stats.entropy(special.softmax(z @ kernel + bias, axis=-1), base=2, axis=-1)
    np.testing.assert_allclose(figs.decoder_entropy_bits(z, kernel, bias), expected,
                               rtol=1e-8, atol=1e-14)
    flat = figs.decoder_entropy_bits(np.zeros((1, 2)), np.zeros((2, 10)), np.zeros(10))
    assert flat[0] == pytest.approx(math.log2(10))


def test_summaries_round_trip_and_keep_numbers_exact(tmp_path):
    s = summary("k2", np.random.default_rng(7), k=2)
    path = run_summary.write_summary(str(tmp_path), s)
    assert json.loads(open(path, encoding="utf-8").read()) == s
    loaded = run_summary.load_summary(path)
    assert loaded.test_error == s["metrics"]["test_error"]
    np.testing.assert_array_equal(loaded.embedding["scale_tril"],
                                  np.asarray(s["embedding"]["scale_tril"]))
    write_results(tmp_path / "other", [s])
    with pytest.raises(run_summary.SummaryError, match="summarised twice"):
        run_summary.load_summaries([str(tmp_path), str(tmp_path / "other")])


def test_zero_errors_are_named_in_the_footnote_not_silently_dropped():
    curves = [figs.Curve("train, 1 sample", np.array([1e-9, 1e-3, 1.0]), np.array([0.0, 0.0, 5.0])),
              figs.Curve("test, 1 sample", np.array([1e-9, 1e-3]), np.array([1.4, 1.2]))]
    note = figs.zeros_on_log_axis(curves)
    assert note == " 0 is not drawn on the log axis: train, 1 sample at β = 1e-09, 0.001."
    assert figs.zeros_on_log_axis(curves[1:]) == ""


def test_runs_from_before_a_config_field_existed_share_a_row_with_newer_ones():
    """Summaries written before `adam_epsilon` and `kl_estimator` existed are read with the
    values those runs had, so they group with new runs of the same recipe, and apart from
    runs that changed either."""
    rng = np.random.default_rng(3)
    old = summary("vib_seed0", rng, seed=0)
    new = summary("vib_seed1", rng, seed=1)
    new["config"]["adam_epsilon"] = 1e-7
    new["config"]["model"]["kl_estimator"] = "analytic"
    changed = summary("vib_sampled_seed0", rng, seed=0)
    changed["config"]["adam_epsilon"] = 1e-8
    changed["config"]["model"]["kl_estimator"] = "sampled"
    runs = [run_summary.from_dict(s, s["name"]) for s in (old, new, changed)]
    groups = report.group_by_recipe(runs)
    assert sorted([r.name for r in g] for g in groups) == [["vib_sampled_seed0"],
                                                          ["vib_seed0", "vib_seed1"]]
    label = report.recipe_label(runs[2].config)
    assert "ε 1e-08" in label and "KL sampled" in label
    assert "ε" not in report.recipe_label(runs[0].config)
    assert "KL sampled" not in report.recipe_label(runs[0].config)
    # The filled-in values are the classes' defaults, and an old config.json still resumes.
    assert run_summary.ADDED_FIELDS == {"adam_epsilon": TrainConfig.adam_epsilon}
    assert run_summary.ADDED_CLASSIFIER_FIELDS == {"kl_estimator": ModelConfig.kl_estimator}
    assert TrainConfig.from_dict(old["config"]).differences(
        TrainConfig.from_dict({**new["config"], "seed": 0})) == []


def test_validation_runs_fill_the_selection_table_not_table1(tmp_path):
    """Runs that held out a validation split are grouped by recipe with their validation
    errors (lowest mean first) and stay out of Table 1, whose rows hold the others."""
    rng = np.random.default_rng(5)
    runs = []
    for lr, errors in ((1e-4, (0.0125, 0.0131)), (1e-3, (0.0150, 0.0140))):
        for seed, error in enumerate(errors):
            s = summary(f"val_lr{lr:g}_seed{seed}", rng, seed=seed, lr=lr)
            s["config"]["validation_size"] = 1000
            s["metrics"]["validation"] = {"error_12sample": error, "error_1shot": 0.02}
            runs.append(s)
    runs.append(summary("full_seed0", rng))
    write_results(tmp_path / "results", runs)
    out = tmp_path / "report"
    proc = run_report(f"--results_dirs={tmp_path / 'results'}", f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "report.json").read_text())
    first, second = data["selection"]
    assert first["runs"] == ["val_lr0.0001_seed0", "val_lr0.0001_seed1"]
    assert first["validation_errors"] == [0.0125, 0.0131]
    assert first["mean"] == pytest.approx(0.0128)
    assert second["mean"] == pytest.approx(0.0145) and "lr 0.001" in second["recipe"]
    assert first["measured_as"] == ["12-sample, one evaluation"]
    (vib,) = [r for r in data["table1"] if r["model"] == "vib"]
    assert vib["runs"] == ["full_seed0"]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Recipe selection: validation error" in md and "1.280 ± 0.042" in md


def test_test_chosen_table_takes_each_runs_lowest_epoch_of_its_headline_error(tmp_path):
    """The 'chosen on the test set' table reads each run's per-epoch test error of the kind
    Table 1 reports (a VIB's S-sample predictive, not its 1-shot or mean-mode error; a
    baseline's plain error), takes its lowest epoch (not the last), and leaves Table 1's
    final-epoch numbers alone."""
    rng = np.random.default_rng(7)
    vib_curves = {0: (0.020, 0.011, 0.015), 1: (0.030, 0.016, 0.013)}
    runs = []
    for seed, curve in vib_curves.items():
        s = summary(f"vib_seed{seed}", rng, seed=seed)
        for record, error in zip(s["progress"], curve, strict=True):
            record["test_error_12sample"] = error
            record["test_error_1shot"] = error / 4  # lower, but not the headline error
            record["test_error_mean"] = error / 5
        runs.append(s)
    det = summary("det_seed0", rng, kind="deterministic")
    for record, error in zip(det["progress"], (0.018, 0.014, 0.016), strict=True):
        record["test_error"] = error
    runs.append(det)
    runs.append({**summary("dropout_seed0", rng, kind="dropout"), "progress": []})
    write_results(tmp_path / "results", runs)
    out = tmp_path / "report"
    proc = run_report(f"--results_dirs={tmp_path / 'results'}", f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "report.json").read_text())
    rows = {r["model"]: r for r in data["table1"] if r["runs"]}
    assert rows["vib"]["best_epochs"] == [{"epoch": 2, "error": 0.011},
                                          {"epoch": 3, "error": 0.013}]
    assert rows["deterministic"]["best_epochs"] == [{"epoch": 2, "error": 0.014}]
    assert rows["vib"]["test_errors"] == [r["metrics"]["test_error"] for r in runs[:2]]
    assert rows["dropout"]["best_epochs"] == [None]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Chosen on the test set: how much it flatters (not a result)" in md
    final_vib = 100 * statistics.fmean(r["metrics"]["test_error"] for r in runs[:2])
    final_det = 100 * det["metrics"]["test_error"]
    assert f"| 2 | {final_vib:.2f} | 1.20 ± 0.14 | 1.10 | 1.10 (2), 1.30 (3) | 1.13 |" in md
    assert f"| 1 | {final_det:.2f} | 1.40 | 1.40 | 1.40 (2) | 1.38 |" in md
    assert "Left out: Dropout (" in md and "no per-epoch test errors in dropout_seed0." in md
