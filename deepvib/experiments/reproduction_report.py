"""The MNIST reproduction report (Alemi et al. 2017, §4.1) from run summaries alone: Table 1
(test error of the baselines and VIB K=256, beta=1e-3, mean and sample std over seeds, beside
the paper's numbers), Figure 1(a)-(d), Figure 2 and every run's learning curves, as PNGs,
`report.md` and `report.json`.

Runs are grouped by recipe: their config without seed, paths and execution settings. A Table 1
row is one model under one recipe (runs that differ only in seed); a Figure 1 or 2 series is
the VIB recipe (beta aside) with the most beta values for its K. A figure without the runs it
needs is skipped with its reason, never drawn from a mixture of recipes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deepvib.experiments import reproduction_figures as figs
from deepvib.experiments import run_summary, vae_report
from deepvib.experiments.run_summary import RunSummary, beta_name
from deepvib.training import atomic

FORMAT = "deepvib.reproduction_report/1"
REPORT_MD, REPORT_JSON, CURVES_DIR = "report.md", "report.json", "curves"
TABLE1_BETA = 1e-3
# Table 1 of the paper (test error, %), K=256; the Pereyra et al. rows are not ours to rerun.
PAPER_TABLE1 = (
    ("deterministic", "Baseline (deterministic)", 1.38),
    ("dropout", "Dropout", 1.34),
    ("confidence_penalty", "Confidence penalty", 1.36),
    ("label_smoothing", "Label smoothing", 1.40),
    ("vib", "VIB (β = 1e-3)", 1.13),
)
# The S of the S-sample predictive shown beside Table 1 when bin/evaluate has drawn it repeatedly
# (the paper's 12; the authors' later JAX remake reports 1,024).
DRAWN_SAMPLES = (12, 1024)
# Config keys that do not change what a run computes (or are derived from its data).
NOT_RECIPE = ("seed", "output_dir", "data_dir", "jit_compile", "steps_per_execution", "strategy",
              "model.label_entropy_bits")
FIGURE_FILES = {
    "figure1a": "figure1a_error_vs_beta.png",
    "figure1b": "figure1b_error_vs_beta_k2.png",
    "figure1c": "figure1c_information_plane.png",
    "figure1d": "figure1d_izx_vs_beta.png",
    "figure2": "figure2_k2_embeddings.png",
}


class FigureUnavailableError(ValueError):
    """The summaries hold too little for a figure; the report skips it and says why."""


# ----------------------------------------------------------------------- recipes
def recipe_key(summary: RunSummary, also_ignore: Sequence[str] = ()) -> tuple:
    ignored = set(NOT_RECIPE) | set(also_ignore)
    return tuple(sorted((k, v) for k, v in run_summary.flattened(summary.config).items()
                        if k not in ignored))


def group_by_recipe(runs: Sequence[RunSummary],
                    also_ignore: Sequence[str] = ()) -> list[list[RunSummary]]:
    groups: dict[tuple, list[RunSummary]] = {}
    for run in runs:
        groups.setdefault(recipe_key(run, also_ignore), []).append(run)
    return [sorted(g, key=lambda r: (r.beta or 0.0, r.seed, r.name)) for g in groups.values()]


def dataset_label(config: dict[str, Any]) -> str:
    names = {"mnist": "MNIST (60,000 train / 10,000 test)",
             "mnist_5k": "embedded 5,000-digit MNIST subset (4,000 / 1,000; not comparable "
                         "with the paper)"}
    label = names.get(config["dataset"], config["dataset"])
    if config.get("validation_size", 0):
        label += f", last {config['validation_size']} training images held out"
    return label


def recipe_label(config: dict[str, Any]) -> str:
    """The recipe in words, read from the config: regulariser, architecture, optimiser."""
    m = config["model"]
    parts = []
    if m["model"] == "vib":
        cov = "full-covariance" if m["covariance"] == "full" else "diagonal"
        parts.append(f"K={m['bottleneck_dim']} {cov} Gaussian")
    else:
        parts.append(f"K={m['bottleneck_dim']} deterministic")
    extra = {"dropout": f"dropout rate {m['dropout_rate']:g}",
             "confidence_penalty": f"confidence penalty {m['confidence_penalty']:g}",
             "label_smoothing": f"label smoothing ε={m['label_smoothing']:g}"}
    if m["model"] in extra:
        parts.append(extra[m["model"]])
    if list(m["hidden_units"]) != [1024, 1024]:
        parts.append(f"hidden units {','.join(str(h) for h in m['hidden_units'])}")
    parts.append(f"{_plural(config['epochs'], 'epoch')}, batch {config['batch_size']}")
    epsilon = config.get("adam_epsilon", run_summary.ADDED_FIELDS["adam_epsilon"])
    epsilon_text = "" if epsilon == run_summary.ADDED_FIELDS["adam_epsilon"] else f", ε {epsilon:g}"
    parts.append(f"Adam lr {config['learning_rate']:g} (β1 {config['adam_beta1']:g}{epsilon_text})")
    if config["lr_decay_rate"] != 1.0:
        parts.append(f"×{config['lr_decay_rate']:g} every {config['lr_decay_epochs']:g} "
                     "epochs")
    parts.append(f"weight EMA {m['ema_decay']:g}" if m["ema_decay"] else "no weight EMA")
    train_samples = config.get("train_samples", m.get("train_samples", 1))
    if m["model"] == "vib":
        parts.append(f"{_plural(train_samples, 'z sample')} in training, "
                     f"{m['eval_samples']}-sample evaluation")
        if m.get("kl_estimator", run_summary.ADDED_CLASSIFIER_FIELDS["kl_estimator"]) == "sampled":
            parts.append("KL sampled at the training z (log p(z|x) − log r(z))")
    if m.get("input_scaling", "symmetric") != "symmetric":
        parts.append(f"inputs {m['input_scaling']}")
    return ", ".join(parts)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def seeds_label(runs: Sequence[RunSummary]) -> str:
    seeds = sorted({r.seed for r in runs})
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}"


def provenance(runs: Sequence[RunSummary], what: str = "") -> str:
    """One footnote: data, recipe, number of runs and seeds, where the numbers come from."""
    config = runs[0].config
    betas = sorted({r.beta for r in runs if r.beta is not None})
    count = _plural(len(runs), "run")
    if len(betas) > 1:
        count += f" ({len(betas)} values of β; {seeds_label(runs)})"
    else:
        count += f" ({seeds_label(runs)})"
    weights = "moving-average weights" if config["model"]["ema_decay"] else "final weights"
    return (f"{what}Data: {dataset_label(config)}. Recipe: {recipe_label(config)}. {count}. "
            f"Final metrics of each run ({weights}), from its run summary (bin/report).")


# ----------------------------------------------------------------------- Table 1
def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    array = np.asarray(values, np.float64)
    return float(array.mean()), (float(array.std(ddof=1)) if len(array) > 1 else None)


def table1_candidates(kind: str, runs: Sequence[RunSummary]) -> list[RunSummary]:
    """The runs of one Table 1 model, trained on the whole training set (runs that held out a
    validation split are for choosing a recipe: the selection table shows them)."""
    runs = [r for r in runs if r.held_out == "test"]
    if kind != "vib":
        return [r for r in runs if r.kind == kind]
    return [r for r in runs if r.is_vib and r.bottleneck_dim != 2
            and math.isclose(r.beta, TABLE1_BETA, rel_tol=1e-9)]


def table1(runs: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """One row per model and recipe (most epochs first); a model without runs keeps a row."""
    rows = []
    for kind, label, paper in PAPER_TABLE1:
        groups = group_by_recipe(table1_candidates(kind, runs))
        groups.sort(key=lambda g: (-g[0].config["epochs"], recipe_label(g[0].config)))
        for group in groups:
            errors = [r.test_error for r in group]
            mean, std = mean_std(errors)
            rows.append({"model": kind, "label": label, "paper_percent": paper,
                         "recipe": recipe_label(group[0].config),
                         "dataset": dataset_label(group[0].config),
                         "runs": [r.name for r in group], "seeds": [r.seed for r in group],
                         "test_errors": errors, "mean": mean, "std": std,
                         "over_draws": over_draws(group),
                         "best_epochs": [best_epoch(r) for r in group],
                         "train_seconds": [round(r.wall_seconds, 1) for r in group]})
        if not groups:
            rows.append({"model": kind, "label": label, "paper_percent": paper,
                         "recipe": None, "runs": [], "test_errors": [], "mean": None,
                         "std": None, "over_draws": {}})
    return rows


def best_epoch(run: RunSummary) -> dict[str, Any] | None:
    """The run's lowest per-epoch test error and its epoch (the earliest on a tie): what it
    would report had training stopped at the epoch the test set likes best (None without
    per-epoch test errors)."""
    errors = run.epoch_errors("test")
    if not errors:
        return None
    epoch, error = min(errors, key=lambda pair: (pair[1], pair[0]))
    return {"epoch": epoch, "error": error}


def over_draws(group: Sequence[RunSummary]) -> dict[str, dict[str, Any]]:
    """Per S of DRAWN_SAMPLES: the runs' mean test errors over bin/evaluate's draws, their mean
    and std over seeds; only when every run of the group was evaluated at that S."""
    out = {}
    for samples in DRAWN_SAMPLES:
        errors = [r.error_over_draws(samples) for r in group]
        if errors and all(e is not None for e in errors):
            mean, std = mean_std(errors)
            out[str(samples)] = {"per_seed": errors, "mean": mean, "std": std}
    return out


def percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}"


def _mean_pm_std(mean: float | None, std: float | None, digits: int = 2) -> str:
    return percent(mean, digits) + (f" ± {percent(std, digits)}" if std is not None else "")


def table1_markdown(rows: Sequence[dict[str, Any]]) -> str:
    drawn = [s for s in DRAWN_SAMPLES if any(str(s) in r["over_draws"] for r in rows)]
    extra = "".join(f" {s}-sample, mean over draws (%) |" for s in drawn)
    lines = ["| Model | Recipe | Data | Seeds | Ours: test error (%), mean ± std | "
             f"Per seed (%) |{extra} Paper (%) |",
             "|---|---|---|---:|---:|---:|" + "---:|" * len(drawn) + "---:|"]
    for row in rows:
        if not row["runs"]:
            lines.append(f"| {row['label']} | not run | | 0 | — | — |" + " — |" * len(drawn)
                         + f" {row['paper_percent']:.2f} |")
            continue
        ours = _mean_pm_std(row["mean"], row["std"])
        per_seed = ", ".join(percent(e) for e in row["test_errors"])
        cells = ""
        for s in drawn:
            entry = row["over_draws"].get(str(s))
            cells += f" {_mean_pm_std(entry['mean'], entry['std'], 3) if entry else '—'} |"
        lines.append(f"| {row['label']} | {row['recipe']} | {row['dataset']} | "
                     f"{len(row['runs'])} | {ours} | {per_seed} |{cells} "
                     f"{row['paper_percent']:.2f} |")
    return "\n".join(lines)


def test_chosen_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Table 1's rows as a number chosen on the test set would read them: never a result.
    A row with a run that has no per-epoch test errors is named as left out."""
    rows = [r for r in rows if r["runs"]]
    left_out = [r for r in rows if not all(r["best_epochs"])]
    rows = [r for r in rows if all(r["best_epochs"])]
    if not rows and not left_out:
        return []
    lines = ["## Chosen on the test set: how much it flatters (not a result)", "",
             "Each run's lowest per-epoch test error (its progress line, one evaluation per "
             "epoch; a VIB's is another draw of z than its final evaluation) and that epoch, "
             "the earliest on a tie: what the run would report had training stopped where the "
             "test set likes it best. The lowest over seeds is what a single number chosen on "
             "the test set by epoch and seed could read. Nothing here chooses anything; Table 1 "
             "is each run's final epoch.", "",
             "| Model | Recipe | Data | Seeds | Final epoch (%), mean | Best epoch (%), "
             "mean ± std | Lowest over seeds (%) | Per seed (%, epoch) | Paper (%) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        best = row["best_epochs"]
        mean, std = mean_std([b["error"] for b in best])
        per_seed = ", ".join(f"{percent(b['error'])} ({b['epoch']})" for b in best)
        lowest = min(b["error"] for b in best)
        lines.append(f"| {row['label']} | {row['recipe']} | {row['dataset']} | "
                     f"{len(row['runs'])} | {percent(row['mean'])} | {_mean_pm_std(mean, std)} "
                     f"| {percent(lowest)} | {per_seed} | {row['paper_percent']:.2f} |")
    for row in left_out:
        missing = [n for n, b in zip(row["runs"], row["best_epochs"], strict=True) if b is None]
        lines.append(f"\nLeft out: {row['label']} ({row['recipe']}): no per-epoch test errors "
                     f"in {', '.join(missing)}.")
    return lines + [""]


# ----------------------------------------------------------------------- recipe selection
def validation_error(run: RunSummary) -> tuple[float, str]:
    """A validation run's error to choose on, and how it was measured: the S-sample predictive
    averaged over bin/evaluate's draws when evaluated so, else the final evaluation's."""
    if run.is_vib:
        drawn = run.error_over_draws(run.eval_samples, "validation")
        if drawn is not None:
            draws = run.validation_predictive_errors["draws"]
            return drawn, f"{run.eval_samples}-sample, mean of {draws} draws"
        return run.error("validation"), f"{run.eval_samples}-sample, one evaluation"
    return run.error("validation"), "one evaluation"


def selection_rows(runs: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """One row per recipe among the runs that held out a validation split: their validation
    errors per seed, mean ± std (lowest mean first). No test number appears here."""
    rows = []
    for group in group_by_recipe([r for r in runs if r.held_out == "validation"]):
        measured = [validation_error(r) for r in group]
        errors = [e for e, _ in measured]
        mean, std = mean_std(errors)
        rows.append({"recipe": recipe_label(group[0].config), "model": group[0].kind,
                     "dataset": dataset_label(group[0].config),
                     "runs": [r.name for r in group], "seeds": [r.seed for r in group],
                     "validation_errors": errors, "measured_as": sorted({m for _, m in measured}),
                     "mean": mean, "std": std})
    return sorted(rows, key=lambda row: row["mean"])


def selection_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["## Recipe selection: validation error", "",
             "Runs that held out the end of the training set (never in Table 1), one row per "
             "recipe, lowest mean first: the numbers to choose a recipe on, not the test set.",
             "", "| Model | Recipe | Data | Seeds | Validation error (%), mean ± std | "
             "Per seed (%) | Measured as |", "|---|---|---|---:|---:|---:|---|"]
    for row in rows:
        per_seed = ", ".join(percent(e, 3) for e in row["validation_errors"])
        lines.append(f"| {row['model']} | {row['recipe']} | {row['dataset']} | "
                     f"{len(row['runs'])} | {_mean_pm_std(row['mean'], row['std'], 3)} | "
                     f"{per_seed} | {'; '.join(row['measured_as'])} |")
    return lines + [""]


# ----------------------------------------------------------------------- series over beta
def beta_series(runs: Sequence[RunSummary], wanted: Callable[[RunSummary], bool],
                what: str, min_betas: int = 2) -> list[RunSummary]:
    """The VIB runs (beta > 0) of the recipe, beta aside, with the most beta values."""
    candidates = [r for r in runs if r.is_vib and wanted(r) and r.beta > 0]
    groups = group_by_recipe(candidates, also_ignore=("model.beta",))
    if not groups:
        raise FigureUnavailableError(f"no runs with β > 0 for {what}")
    best = max(groups, key=lambda g: (len({r.beta for r in g}), len(g), g[0].epochs))
    if len({r.beta for r in best}) < min_betas:
        raise FigureUnavailableError(
            f"{what} needs runs at {min_betas} or more values of β under one recipe; the best "
            f"recipe has {len({r.beta for r in best})}")
    return best


def by_beta(runs: Sequence[RunSummary], value: Callable[[RunSummary], float]) -> tuple:
    """(betas, means, stds) over the runs (seeds) of each beta, betas increasing."""
    betas = sorted({r.beta for r in runs})
    stats = [mean_std([value(r) for r in runs if r.beta == b]) for b in betas]
    return (np.array(betas), np.array([m for m, _ in stats]),
            np.array([s or 0.0 for _, s in stats]))


def _footnote_series(runs: Sequence[RunSummary], left_out: int) -> str:
    note = provenance(runs)
    if left_out:
        note += (f" {left_out} other VIB run(s) of this K (another recipe, or β = 0, which a "
                 "log axis cannot show) are not drawn.")
    return note


def figure1_errors(runs: Sequence[RunSummary], panel: str, k2: bool) -> bytes:
    wanted = (lambda r: r.bottleneck_dim == 2) if k2 else (lambda r: r.bottleneck_dim != 2)
    series = beta_series(runs, wanted, f"Figure 1({panel}) (VIB, K {'=' if k2 else '≠'} 2)")
    samples = series[0].eval_samples
    curves = []
    for split, colour in (("train", "C3"), ("test", "C0")):
        for count, style, words in ((None, "-", f"{samples}-sample average"),
                                    (1, "--", "1 sample")):
            betas, mean, std = by_beta(series, lambda r, s=split, c=count: r.error(s, c))
            curves.append(figs.Curve(f"{split}, {words}", betas, 100 * mean, 100 * std,
                                     style, colour))
    left_out = sum(1 for r in runs if r.is_vib and wanted(r)) - len(series)
    k = series[0].bottleneck_dim
    note = _footnote_series(series, left_out) + figs.zeros_on_log_axis(curves)
    return figs.line_figure(f"Figure 1({panel}): error vs β, VIB K={k}", curves, "β",
                            "error (%)", note, logy=True)


def _k256(runs: Sequence[RunSummary], what: str) -> tuple[list[RunSummary], int]:
    series = beta_series(runs, lambda r: r.bottleneck_dim != 2, f"{what} (VIB, K ≠ 2)")
    k = series[0].bottleneck_dim
    left_out = sum(1 for r in runs if r.is_vib and r.bottleneck_dim == k) - len(series)
    return series, left_out


def figure1_information_plane(runs: Sequence[RunSummary]) -> bytes:
    series, left_out = _k256(runs, "Figure 1(c)")
    curves = []
    for split, colour, style in (("train", "C3", "-"), ("test", "C0", "--")):
        _, x, _ = by_beta(series, lambda r, s=split: r.split_metric(s, "kl_bits"))
        _, y, err = by_beta(series, lambda r, s=split: r.split_metric(s, "izy_lower_bits"))
        curves.append(figs.Curve(split, x, y, err, style, colour))
    h_y = float(series[0].model_config.get("label_entropy_bits", math.log2(10)))
    return figs.line_figure(
        f"Figure 1(c): information plane, VIB K={series[0].bottleneck_dim} "
        "(one point per β)", curves, "I(Z;X) upper bound (bits)",
        "I(Z;Y) lower bound (bits)", _footnote_series(series, left_out),
        hlines=[(h_y, f"H(Y) = {h_y:.2f} bits")], plain_x=True)


def figure1_izx(runs: Sequence[RunSummary]) -> bytes:
    series, left_out = _k256(runs, "Figure 1(d)")
    curves = []
    for split, colour, style in (("train", "C3", "-"), ("test", "C0", "--")):
        betas, mean, std = by_beta(series, lambda r, s=split: r.split_metric(s, "kl_bits"))
        curves.append(figs.Curve(split, betas, mean, std, style, colour))
    return figs.line_figure(
        f"Figure 1(d): I(Z;X) vs β, VIB K={series[0].bottleneck_dim}", curves, "β",
        "I(Z;X) upper bound: KL to the prior (bits)", _footnote_series(series, left_out),
        logy=True, hlines=[(math.log2(10), "log2(10) bits (10 classes)")])


def figure2(runs: Sequence[RunSummary]) -> bytes:
    with_embedding = [r for r in runs if r.embedding is not None]
    series = beta_series(with_embedding, lambda r: r.bottleneck_dim == 2,
                         "Figure 2 (VIB, K = 2, with the posteriors in its summary)",
                         min_betas=1)
    panels, drawn = [], []
    for beta in sorted({r.beta for r in series}):
        run = min((r for r in series if r.beta == beta), key=lambda r: (r.seed, r.name))
        e = run.embedding
        s = run.eval_samples
        title = (f"β = {beta_name(beta)}: $err_1$ {100 * run.error('test', 1):.2f}%, "
                 f"$err_{{{s}}}$ {100 * run.error('test'):.2f}%")
        panels.append(figs.Panel(title, e["mean"], e["scale_tril"], e["labels"],
                                 e["decoder_kernel"], e["decoder_bias"]))
        drawn.append(run)
    n = len(drawn[0].embedding["labels"])
    note = provenance(drawn, f"Ellipses: the first {n:,} test images (one model per β, the "
                             "lowest seed); errors on the whole test set. ")
    return figs.figure2(panels, note)


def run_curves(run: RunSummary) -> bytes:
    """Learning curves of one run from its progress records (train_*: running means over
    the epoch with the raw weights; the held-out split: evaluated after the epoch)."""
    epochs = np.array([r["epoch"] for r in run.progress], np.float64)
    h = run.held_out
    dot = "." if len(epochs) <= 30 else ""  # a line of one epoch is a point

    def series(key: str) -> np.ndarray:
        return np.array([r.get(key, np.nan) for r in run.progress], np.float64)

    train_note = "train (running mean over the epoch)"
    if run.is_vib:
        s = run.eval_samples
        errors = [figs.Curve(f"{h}, {s}-sample average", epochs, 100 * series(
                      f"{h}_error_{s}sample"), colour="C0", marker=dot),
                  figs.Curve(f"{h}, 1 sample", epochs, 100 * series(f"{h}_error_1shot"),
                             style="--", colour="C0", marker=dot),
                  figs.Curve(f"{h}, z = posterior mean", epochs,
                             100 * series(f"{h}_error_mean"), style=":", colour="C2",
                             marker=dot),
                  figs.Curve(f"{train_note}, 1 sample", epochs,
                             100 * series("train_error_1shot"), colour="C3", marker=dot)]
        second = [figs.Curve(train_note, epochs, series("train_kl_bits"), colour="C3",
                             marker=dot),
                  figs.Curve(h, epochs, series(f"{h}_kl_bits"), style="--", colour="C0",
                             marker=dot)]
        second_label = "I(Z;X) upper bound (bits)"
    else:
        errors = [figs.Curve(h, epochs, 100 * series(f"{h}_error"), colour="C0", marker=dot),
                  figs.Curve(train_note, epochs, 100 * series("train_error"), colour="C3",
                             marker=dot)]
        second = [figs.Curve(train_note, epochs, series("train_loss"), colour="C3", marker=dot),
                  figs.Curve(h, epochs, series(f"{h}_loss"), style="--", colour="C0",
                             marker=dot)]
        second_label = "loss"
    beta = f", β = {beta_name(run.beta)}" if run.is_vib else ""
    note = provenance([run], f"Per-epoch progress of run {run.name}; {h} numbers use the "
                             "moving-average weights when the run keeps them. ")
    return figs.learning_curves(f"{run.name}: {run.kind}{beta}, {run.wall_seconds / 60:.1f} "
                                "min of training", errors, second, second_label, note)


FIGURES: dict[str, Callable[[Sequence[RunSummary]], bytes]] = {
    "figure1a": lambda runs: figure1_errors(runs, "a", k2=False),
    "figure1b": lambda runs: figure1_errors(runs, "b", k2=True),
    "figure1c": figure1_information_plane,
    "figure1d": figure1_izx,
    "figure2": figure2,
}
CAPTIONS = {
    "figure1a": "Figure 1(a): train and test error vs β, 1 posterior sample and the "
                "S-sample average (K=256 in the paper).",
    "figure1b": "Figure 1(b): the same for K=2 (full-covariance Gaussian).",
    "figure1c": "Figure 1(c): the information plane, I(Z;Y) lower bound vs I(Z;X) upper "
                "bound in bits, train and test.",
    "figure1d": "Figure 1(d): I(Z;X) upper bound vs β (log-log).",
    "figure2": "Figure 2: 95% posterior ellipses of test images, coloured by label, over the "
               "entropy of q(y|z).",
}


# ----------------------------------------------------------------------- Figure 1's numbers
SWEEP_COLUMNS = (  # (heading, split, metric: "error" with samples, or a metrics.json key)
    ("train error S (%)", "train", ("error", None)), ("train error 1 (%)", "train", ("error", 1)),
    ("test error S (%)", "test", ("error", None)), ("test error 1 (%)", "test", ("error", 1)),
    ("I(Z;X) train (bits)", "train", "kl_bits"), ("I(Z;X) test (bits)", "test", "kl_bits"),
    ("I(Z;Y) train (bits)", "train", "izy_lower_bits"),
    ("I(Z;Y) test (bits)", "test", "izy_lower_bits"),
)


def sweep_rows(runs: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """The numbers Figure 1 plots, one row per (K, β) of each K's series: means over seeds."""
    rows = []
    for wanted, what in ((lambda r: r.bottleneck_dim != 2, "K ≠ 2"),
                         (lambda r: r.bottleneck_dim == 2, "K = 2")):
        try:
            series = beta_series(runs, wanted, f"the β table ({what})")
        except FigureUnavailableError:
            continue
        columns = {}
        for heading, split, metric in SWEEP_COLUMNS:
            def value(r: RunSummary, split=split, metric=metric) -> float:
                if isinstance(metric, tuple):
                    return 100 * r.error(split, metric[1])
                return r.split_metric(split, metric)
            betas, columns[heading], _ = by_beta(series, value)
        for i, beta in enumerate(betas):
            at_beta = [r for r in series if r.beta == beta]
            rows.append({"bottleneck_dim": at_beta[0].bottleneck_dim, "beta": float(beta),
                         "eval_samples": at_beta[0].eval_samples, "seeds": len(at_beta),
                         **{h: float(column[i]) for h, column in columns.items()}})
    return rows


def _sweep_cell(value: float, percent_cell: bool) -> str:
    if percent_cell or 0.1 <= abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2g}"


def sweep_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    headings = [h for h, _, _ in SWEEP_COLUMNS]
    out = ["## Figures 1 and 2: the numbers", "",
           "Final metrics of the runs drawn in Figure 1, mean over seeds where a β has several "
           "(S: the runs' S-sample average). I(Z;X): the KL to the prior, an upper bound; "
           "I(Z;Y): H(Y) minus the decoder's cross-entropy, a lower bound.", "",
           "| K | β | seeds | " + " | ".join(headings) + " |",
           "|---:|---:|---:|" + "---:|" * len(headings)]
    for row in rows:
        cells = [_sweep_cell(row[h], "%" in h) for h in headings]
        out.append(f"| {row['bottleneck_dim']} | {beta_name(row['beta'])} | {row['seeds']} | "
                   + " | ".join(cells) + " |")
    return out + [""]


# ----------------------------------------------------------------------- the report
def make_report(runs: Sequence[RunSummary], output_dir: str, sources: str,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Writes the PNGs, curves/<run>.png, report.md and report.json; returns report.json."""
    vaes = [r for r in runs if vae_report.is_vae(r)]
    others = sorted(r.name for r in runs if not r.is_classifier and not vae_report.is_vae(r))
    if others:
        log(f"neither classifiers nor VAEs, left out of the report: {', '.join(others)}")
    runs = sorted((r for r in runs if r.is_classifier),
                  key=lambda r: (r.kind, r.bottleneck_dim, r.beta or 0.0, r.seed, r.name))
    written: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, draw in FIGURES.items() if runs else ():
        try:
            png = draw(runs)
        except FigureUnavailableError as e:
            skipped[name] = str(e)
            log(f"{name}: skipped: {e}")
            continue
        written[name] = FIGURE_FILES[name]
        atomic.write_bytes(os.path.join(output_dir, FIGURE_FILES[name]), png)
    curves = {}
    for run in runs:
        curves[run.name] = f"{CURVES_DIR}/{run.name}.png"
        atomic.write_bytes(os.path.join(output_dir, curves[run.name]), run_curves(run))
    for run in vaes:
        curves[run.name] = f"{CURVES_DIR}/{run.name}.png"
        atomic.write_bytes(os.path.join(output_dir, curves[run.name]),
                           vae_report.vae_curves(run))
    rows = table1(runs)
    report = {"format": FORMAT, "sources": sources, "table1": rows,
              "selection": selection_rows(runs), "beta_sweep": sweep_rows(runs), "figures": written,
              "skipped_figures": skipped, "learning_curves": curves, "left_out": others,
              "runs": [_run_entry(r) for r in runs], "vae_table": vae_report.vae_rows(vaes)}
    atomic.write_json(os.path.join(output_dir, REPORT_JSON), report)
    atomic.write_text(os.path.join(output_dir, REPORT_MD), markdown(report, rows))
    return report


def _run_entry(run: RunSummary) -> dict[str, Any]:
    return {"name": run.name, "model": run.kind, "bottleneck_dim": run.bottleneck_dim,
            "beta": run.beta, "seed": run.seed, "epochs": run.epochs,
            "dataset": run.config["dataset"], "test_error": run.test_error,
            "test_error_1shot": run.metrics.get("test_error_1shot"),
            "train_seconds": round(run.wall_seconds, 1), "recipe": recipe_label(run.config)}


def markdown(report: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    vae = vae_markdown(report)
    if not report["runs"]:  # VAE runs only
        return "\n".join(["# VAE runs", "", f"Drawn by `bin/report` from run summaries "
                          f"({report['sources']}).", "", *vae]) + "\n"
    out = ["# Reproduction of Alemi et al. (2017), §4.1: MNIST", "",
           f"Drawn by `bin/report` from {len(report['runs'])} run summaries ({report['sources']}"
           "); a run summary holds everything drawn here, so no run directory or checkpoint is "
           "needed. Errors are final test errors from each run's `metrics.json` (VIB: the "
           "S-sample predictive, the mean of S softmaxes).", "",
           "## Table 1: test error on MNIST", "", table1_markdown(rows), "",
           "Mean ± sample standard deviation over the runs of a row (seeds); one run has no "
           "spread. Paper: Alemi et al. (2017), Table 1 (K=256, 200 epochs).", *(
               ["", "The S-sample, mean-over-draws columns (VIB runs evaluated by "
                "`bin/evaluate`): each run's error averaged over repeated evaluations with "
                "fresh draws of z, which removes the sampling noise of a single evaluation; "
                "mean ± std over seeds."] if any(r["over_draws"] for r in rows) else []),
           ""]
    for name, caption in CAPTIONS.items():
        out.append(f"## {caption.split(':')[0]}")
        out.append("")
        if name in report["figures"]:
            out += [f"![{caption}]({report['figures'][name]})", "", caption, ""]
        else:
            out += [f"Not drawn: {report['skipped_figures'][name]}.", ""]
    out += test_chosen_markdown(rows)
    out += sweep_markdown(report["beta_sweep"])
    out += selection_markdown(report["selection"])
    out += ["## Runs and learning curves", "",
            "| Run | Model | K | β | Seed | Epochs | Data | Test error (%) | Training (min) | "
            "Curves |", "|---|---|---:|---:|---:|---:|---|---:|---:|---|"]
    for entry in report["runs"]:
        beta = beta_name(entry["beta"]) if entry["beta"] is not None else "—"
        out.append(f"| {entry['name']} | {entry['model']} | {entry['bottleneck_dim']} | {beta} "
                   f"| {entry['seed']} | {entry['epochs']} | {entry['dataset']} | "
                   f"{percent(entry['test_error'])} | {entry['train_seconds'] / 60:.1f} | "
                   f"[png]({report['learning_curves'][entry['name']]}) |")
    return "\n".join(out + ["", *vae]) + "\n"


def vae_markdown(report: dict[str, Any]) -> list[str]:
    """The VAE section: the table of vae_report and each run's learning curves."""
    rows = report["vae_table"]
    if not rows:
        return []
    curves = [f"- {r['name']}: [learning curves]({report['learning_curves'][r['name']]})"
              for r in rows]
    return ["## VAEs (Sootla 2018; Dupont 2018)", "",
            "Test split, nats per image (MNIST at 32x32: 1,024 Bernoulli pixels with grey "
            "levels as soft targets). Active units: posterior-mean variance over the test "
            "images > 0.01. Discrete-code accuracy: the best one-to-one mapping of categories "
            "to digits. Train time: the sum of the epochs' durations.", "",
            vae_report.vae_table_markdown(rows), *curves, ""]
