"""The VAE part of `bin/report`: its table equals the runs' metrics and every run gets its
learning curves, from hand-made run summaries alone."""

import json

import matplotlib.image
import pytest

from deepvib.experiments import reproduction_report, run_summary


def vae_summary(name, model="jointvae", weight_decay=0.0, epochs=3):
    discrete = [10] if model == "jointvae" else []
    progress = [{"epoch": e, "seconds": 60.0, "learning_rate": 5e-4, "train_loss": 200.0 - e,
                 "train_reconstruction_ll": -190.0 + e, "test_reconstruction_ll": -191.0 + e,
                 "test_elbo": -195.0 + e, "train_kl_z": 1.0 * e, "test_kl_z": 1.1 * e,
                 "train_kl_c": 0.5, "test_kl_c": 0.5, "train_capacity_z": 1.0 * e,
                 "train_capacity_c": 0.7 * e} for e in range(1, epochs + 1)]
    metrics = {"model": model, "family": "vae", "dataset": "mnist", "epochs": epochs,
               "test_elbo": -180.25, "test_reconstruction_ll": -170.5, "test_kl_z": 7.25,
               "test_kl_c": 2.5 if discrete else 0.0, "test_iwae_100": -176.125,
               "active_units": 6, "train": {}, "test": {}}
    if discrete:
        metrics["discrete_accuracy"] = 0.8125
    config = {"model": {"model": model, "continuous_dim": 10, "discrete_dims": discrete,
                        "weight_decay": weight_decay},
              "dataset": "mnist", "seed": 0, "epochs": epochs, "validation_size": 0}
    return run_summary.from_dict({"format": run_summary.FORMAT, "name": name,
                                  "config": config, "metrics": metrics, "progress": progress},
                                 name)


def test_the_vae_table_equals_the_runs_metrics_and_each_run_has_curves(tmp_path):
    runs = [vae_summary("joint"), vae_summary("plain", "vae", epochs=2),
            vae_summary("decayed", "vae", weight_decay=1e-3)]
    report = reproduction_report.make_report(runs, str(tmp_path), "hand-made",
                                             log=lambda _: None)
    table = {row["name"]: row for row in report["vae_table"]}
    assert sorted(table) == ["decayed", "joint", "plain"]
    assert table["joint"]["elbo"] == -180.25 and table["joint"]["iwae"] == -176.125
    assert table["joint"]["iwae_samples"] == 100
    assert table["joint"]["discrete_accuracy"] == 0.8125
    assert table["plain"]["discrete_accuracy"] is None and table["plain"]["epochs"] == 2
    assert table["plain"]["train_minutes"] == pytest.approx(2.0)  # two 60 s epochs
    md = (tmp_path / "report.md").read_text()
    assert "| joint | jointvae | 3 | -170.50 | 7.25 | 2.50 | -180.25 | -176.12 | 6/10 | " \
           "81.2% | 3.0 |" in md
    assert "| decayed | vae, weight decay 0.001 |" in md
    assert report["figures"] == {}  # no classifier: no Table 1 or Figure 1, and no error
    for name in table:
        png = matplotlib.image.imread(tmp_path / report["learning_curves"][name])
        assert png.shape[1] > 1.5 * png.shape[0]  # two panels side by side
    assert json.loads((tmp_path / "report.json").read_text())["vae_table"][0]["name"] == \
        "decayed"


def test_a_vae_summary_with_a_malformed_progress_is_refused():
    raw = {"format": run_summary.FORMAT, "name": "x",
           "config": {"model": {"model": "vae"}}, "metrics": {}, "progress": [{"epoch": "1"}]}
    with pytest.raises(run_summary.SummaryError, match="integer epoch"):
        run_summary.from_dict(raw, "x.json")
