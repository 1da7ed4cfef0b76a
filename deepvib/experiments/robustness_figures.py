"""Figures 3 and 4 of Alemi et al. (2017, section 4.2.4) from `bin/attack` results, and their
JSON summary.

- Figure 3: targeted Carlini & Wagner L2 attacks pushing the first 10 zeros of the test set to
  class 1. Paper layout (its caption): one row per image, the first column the original, then
  one column per model (deterministic, dropout, VIB by increasing beta); `models_as_rows`
  transposes it (one row per model, the first row the originals). A cell's background is red
  for a successful attack (predicted = target), green for a failed one (predicted = label) and
  purple for another wrong label.
- Figure 4(a): mean L0, L2 and L-inf norms of the successful perturbations of Figure 3's
  images, each divided by the same mean against the deterministic model, vs beta (log axis).
- Figure 4(b): accuracy on the CW-perturbed first N test images vs beta, targeted (blue) and
  untargeted (green); the deterministic model as horizontal red lines. For sampling VIB
  models whose records hold it, the accuracy averaged over fresh posterior redraws is drawn
  beside it (open markers, dash-dot). VIB models of `summary_dirs` (e.g. mean mode) are
  added as grey points named by their directory.
- `robustness_summary.json`: per model beta, clean accuracy, success rate, accuracy under
  attack, mean norms and norms relative to the deterministic model, for every experiment.

Several runs with the same beta are averaged (the error bars are their standard deviation),
as the paper averages three models per beta. VIB with beta = 0 has no place on a log axis: it
is reported in the summary only. Runs whose directories are gone can come from an earlier
output's attack_summaries.json (`summary_records`). Rendering uses matplotlib's Agg canvas
(headless) and every file is written atomically.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from deepvib.experiments.records import NORMS, AttackRecord
from deepvib.experiments.summary_records import (
    ATTACK_SUMMARIES_JSON,
    SUMMARY_JSON,
    attack_summaries,
    earlier_records,
    experiment_name,
    records_with_earlier,
)
from deepvib.training.atomic import write_bytes

OUTCOME_COLOURS = {
    "success": (0.86, 0.08, 0.08),  # red: predicted = target (untargeted: != label)
    "failure": (0.10, 0.62, 0.10),  # green: still the true label
    "other": (0.55, 0.15, 0.70),  # purple: a wrong label other than the target
}
NORM_LABELS = {"l0": "$L_0$", "l2": "$L_2$", "linf": r"$L_\infty$"}
FIGURE3_PNG = "figure3_zeros_to_ones.png"
FIGURE4A_PNG = "figure4a_relative_norms.png"
FIGURE4B_PNG = "figure4b_accuracy_under_attack.png"
BASE_MODEL = "deterministic"


class FigureUnavailableError(ValueError):
    """The results hold too little for a figure (e.g. no deterministic success to normalise
    by); `make_figures` skips that figure and says why in the summary."""


# ----------------------------------------------------------------------- Figure 3
def cell_outcome(label: int, predicted: int, target: int | None) -> str:
    """'success', 'failure' or 'other' (Figure 3's red, green, purple).

    Targeted: success iff predicted == target, failure iff predicted == label, other otherwise.
    Untargeted (target None): success iff predicted != label.
    """
    if target is None:
        return "success" if predicted != label else "failure"
    if predicted == target:
        return "success"
    return "failure" if predicted == label else "other"


def outcomes(record: AttackRecord) -> list[str]:
    targets = [None] * len(record.labels) if record.targets is None else record.targets
    return [cell_outcome(int(y), int(p), None if t is None else int(t))
            for y, p, t in zip(record.labels, record.predicted, targets, strict=True)]


def on_background(image: np.ndarray, colour: tuple[float, float, float]) -> np.ndarray:
    """RGB [H, W, 3]: white strokes on a `colour` background (intensity blends the two);
    black gives the plain grey-scale image."""
    x = np.clip(np.asarray(image, np.float64).reshape(image.shape[0], image.shape[1]), 0, 1)
    return x[..., None] + (1.0 - x[..., None]) * np.asarray(colour)


def figure3(
    records: list[AttackRecord], path: str, *, models_as_rows: bool = False,
    max_images: int = 10,
) -> None:
    """Originals and every model's adversarial images, colour-coded by outcome."""
    if not records:
        raise ValueError("Figure 3 needs at least one attack record")
    summary_only = [r.run_name for r in records if r.summary_only]
    if summary_only:
        raise FigureUnavailableError(
            f"Figure 3 needs per-example results and images; only summary numbers are at hand "
            f"for {', '.join(summary_only)} (from earlier results)")
    indices = records[0].indices[:max_images]
    for r in records:
        if not np.array_equal(r.indices[:max_images], indices):
            raise ValueError(f"{r.run_name} was attacked on other test images than "
                             f"{records[0].run_name}; Figure 3 needs the same images")
    originals = records[0].load_images()[0][:max_images]
    columns = [("original", [on_background(o, (0.0, 0.0, 0.0)) for o in originals])]
    for r, name in zip(records, display_names(records), strict=True):
        adversarial = r.load_images()[1][:max_images]
        cells = [on_background(a, OUTCOME_COLOURS[o])
                 for a, o in zip(adversarial, outcomes(r)[:max_images], strict=True)]
        columns.append((name, cells))
    _save(_image_grid(columns, models_as_rows,
                      _figure3_title(records) + "\n" + provenance(records)), path)


def display_names(records: list[AttackRecord]) -> list[str]:
    """Each record's label, with its run name added where labels repeat (same model, beta)."""
    labels = [r.label for r in records]
    return [f"{label} {r.run_name}" if labels.count(label) > 1 else label
            for label, r in zip(labels, records, strict=True)]


def _figure3_title(records: list[AttackRecord]) -> str:
    r = records[0]
    if r.targets is None:
        return "Untargeted CW L2\nred: success, green: failure"
    targets = sorted(set(r.targets.tolist()))
    target = f"class {targets[0]}" if len(targets) == 1 else "random targets"
    return f"CW L2 to {target}\nred: success, green: failure, purple: other label"


def _image_grid(columns: list[tuple[str, list[np.ndarray]]], transpose: bool,
                title: str) -> Figure:
    """Grid of images; `columns[k] = (name, images)`, drawn as columns or (transpose) rows."""
    n_images, n_groups = len(columns[0][1]), len(columns)
    rows, cols = (n_groups, n_images) if transpose else (n_images, n_groups)
    cell, header, margin = 0.8, (0.6 if transpose else 0.9), (1.3 if transpose else 0.1)
    width = max(cols * cell + margin + 0.1, 3.6)
    height = rows * cell + header
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(left=margin / width, right=1 - 0.1 / width, bottom=0.05 / height,
                        top=1 - header / height, wspace=0.06, hspace=0.06)
    for c, (name, images) in enumerate(columns):
        for i, image in enumerate(images):
            ax = axes[c, i] if transpose else axes[i, c]
            ax.imshow(image, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        if transpose:
            axes[c, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
        else:
            axes[0, c].set_title(name.replace(" ", "\n"), fontsize=7)
    fig.suptitle(title, fontsize=8, y=1 - 0.08 / height, va="top")
    return fig


# ----------------------------------------------------------------------- Figure 4
def relative_norms(means: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    """{'l0': means['l0'] / base['l0'], ...}; NaN where either is missing, NaN or base <= 0."""
    out = {}
    for norm in NORMS:
        value, reference = means.get(norm, math.nan), base.get(norm, math.nan)
        ok = _finite(value) and _finite(reference) and reference > 0
        out[norm] = value / reference if ok else math.nan
    return out


def base_norms(records: list[AttackRecord]) -> dict[str, float]:
    """Mean norms against the deterministic model (averaged over its runs, NaN if none)."""
    base = [r for r in records if r.model_kind == BASE_MODEL]
    return {n: _nanmean([r.mean_norm(n) for r in base]) for n in NORMS}


def vib_by_beta(records: list[AttackRecord]) -> dict[float, list[AttackRecord]]:
    """VIB records with beta > 0 (those a log axis can show), grouped by beta, sorted."""
    groups: dict[float, list[AttackRecord]] = defaultdict(list)
    for r in records:
        if r.is_vib and r.beta is not None and r.beta > 0:
            groups[float(r.beta)].append(r)
    return dict(sorted(groups.items()))


def figure4a(records: list[AttackRecord], path: str) -> None:
    """Relative L0 / L2 / L-inf of successful perturbations vs beta (log x-axis)."""
    base = base_norms(records)
    if not any(_finite(v) for v in base.values()):
        raise FigureUnavailableError("Figure 4(a) needs a deterministic model with at least one "
                         "successful attack (the norms are relative to it)")
    groups = _require_vib(vib_by_beta(records), "Figure 4(a)")
    fig = Figure(figsize=(5.0, 3.6))
    ax = fig.subplots()
    for norm, marker in zip(NORMS, "os^", strict=True):
        _errorbar_by_beta(ax, groups, lambda r, n=norm: relative_norms(_means(r), base)[n],
                          marker=marker, label=NORM_LABELS[norm])
    ax.axhline(1.0, color="red", linestyle="--", linewidth=1, label="deterministic")
    _finish_beta_axes(fig, ax, "perturbation norm / deterministic's",
                      "Successful CW L2 perturbations (Figure 4a)", 8, path,
                      provenance(records))


def figure4b(
    targeted: list[AttackRecord], untargeted: list[AttackRecord], path: str,
    others: dict[str, list[AttackRecord]] | None = None,
) -> None:
    """Accuracy on CW-perturbed test images vs beta; deterministic as horizontal lines.

    `others`: further experiments (e.g. mean mode) whose VIB models are drawn as grey series
    named by their key.
    """
    if not targeted and not untargeted:
        raise FigureUnavailableError("Figure 4(b) needs targeted or untargeted attack records")
    fig = Figure(figsize=(5.0, 3.6))
    ax = fig.subplots()
    plotted = False
    for records, name, colour, style, marker in (
            (targeted, "targeted", "tab:blue", "--", "o"),
            (untargeted, "untargeted", "tab:green", ":", "s")):
        groups = vib_by_beta(records)
        if groups:
            _errorbar_by_beta(ax, groups, _accuracy, marker=marker, color=colour,
                              label=f"VIB, {name}")
            plotted = True
            if any(_finite(_redrawn_accuracy(r)) for g in groups.values() for r in g):
                _errorbar_by_beta(ax, groups, _redrawn_accuracy, marker=marker, color=colour,
                                  mfc="white", linestyle="-.",
                                  label=f"VIB, {name}, mean over redraws")
        for kind, line_colour in ((BASE_MODEL, "red"), ("dropout", "tab:orange")):
            level = _nanmean([_accuracy(r) for r in records if r.model_kind == kind])
            if _finite(level):
                ax.axhline(level, color=line_colour, linestyle=style, linewidth=1.2,
                           label=f"{kind}, {name}")
    if not plotted:
        raise FigureUnavailableError("Figure 4(b) needs at least one VIB model with beta > 0")
    for records, marker in zip((others or {}).values(), "^vD<>", strict=False):
        groups = vib_by_beta(records)
        if groups:
            _errorbar_by_beta(ax, groups, _accuracy, marker=marker, color="0.35",
                              linestyle="none", label=f"VIB, {describe_attack(records)}")
    ax.set_ylim(-0.02, 1.02)
    every = [*targeted, *untargeted, *(r for rs in (others or {}).values() for r in rs)]
    _finish_beta_axes(fig, ax, "accuracy under CW L2 attack",
                      "Accuracy on perturbed test images (Figure 4b)", 7, path,
                      provenance(every))


def _errorbar_by_beta(
    ax, groups: dict[float, list[AttackRecord]], value: Callable[[AttackRecord], float],
    **style: Any,
) -> None:
    """Mean and spread of `value` over the runs of each beta, as one error-bar series."""
    mean, spread = zip(*(_mean_and_std([value(r) for r in g]) for g in groups.values()),
                       strict=True)
    ax.errorbar(list(groups), mean, yerr=spread, capsize=3, **style)


def _finish_beta_axes(fig: Figure, ax, ylabel: str, title: str, legend_size: int,
                      path: str, footnote: str) -> None:
    """Log-beta x axis, labels, legend, provenance footnote; write the PNG."""
    ax.set_xscale("log")
    ax.set_xlabel(r"$\beta$")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=legend_size)
    fig.text(0.01, 0.005, footnote, fontsize=5, va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    _save(fig, path)


def describe_attack(records: list[AttackRecord]) -> str:
    """How an experiment attacked its VIB models, in English (for legends): e.g.
    'untargeted, mean mode (z = μ)' or 'untargeted, 12 samples, success judged on 100 fresh
    samples'."""
    params = next((r.raw.get("params") or {} for r in records if r.is_vib),
                  records[0].raw.get("params") or {} if records else {})
    kind = "targeted" if params.get("targeted") else "untargeted"
    samples = params.get("attack_samples", 12)
    if samples == 0:
        return f"{kind}, mean mode (z = μ)"
    text = f"{kind}, {samples}-sample predictive"
    if params.get("success_samples"):
        text += f", success judged on {params['success_samples']} fresh samples"
    return text


def provenance(records: list[AttackRecord]) -> str:
    """Images, attack iterations and training epochs of the records drawn (one line)."""
    images = sorted({int(r.summary["n"]) for r in records if r.summary.get("n") is not None})
    images = images or sorted({len(r.labels) for r in records if not r.summary_only})
    budgets = sorted({(p.get("binary_search_steps"), p.get("max_iterations"))
                      for r in records if (p := r.raw.get("params") or {}).get("attack")
                      == "cw_l2" and p.get("max_iterations") is not None}, key=str)
    epochs = sorted({e for r in records
                     if (e := (r.raw.get("trained") or {}).get("epochs")) is not None})
    parts = [f"{'/'.join(f'{n:,}' for n in images)} test images"]
    if budgets:
        parts.append("CW " + ", ".join(f"{b} binary-search steps × {m:,} iterations"
                                       for b, m in budgets))
    parts.append(f"models trained {'/'.join(map(str, epochs))} epochs" if epochs
                 else "training epochs not recorded in these summaries")
    return "; ".join(parts)


# ----------------------------------------------------------------------- summary
def experiment_summary(records: list[AttackRecord]) -> dict[str, Any]:
    """Per model of one experiment: numbers of its summary and norms relative to the base."""
    base = base_norms(records)
    models = {}
    for r in records:
        s = r.summary
        rel = relative_norms(_means(r), base)
        models[r.run_name] = {
            "model": r.model_kind, "beta": r.beta, "n": s["n"],
            "clean_accuracy": s.get("clean_accuracy"), "success_rate": s["success_rate"],
            "accuracy_under_attack": s["accuracy_under_attack"],
            "redrawn_accuracy_under_attack": s.get("redrawn_accuracy_under_attack"),
            "redraws": s.get("redraws"),
            **{f"mean_{n}": _or_none(r.mean_norm(n)) for n in NORMS},
            **{f"relative_{n}": _or_none(rel[n]) for n in NORMS},
        }
    return {"base_norms": {n: _or_none(v) for n, v in base.items()}, "models": models}


def robustness_summary(experiments: dict[str, list[AttackRecord]]) -> dict[str, Any]:
    """{'models': {run: {model, beta, <experiment>: {...}}}, 'base_norms': {...}}."""
    models: dict[str, dict[str, Any]] = {}
    base = {}
    for name, records in experiments.items():
        summary = experiment_summary(records)
        base[name] = summary["base_norms"]
        for run, entry in summary["models"].items():
            model = models.setdefault(run, {"model": entry["model"], "beta": entry["beta"]})
            model[name] = {k: v for k, v in entry.items() if k not in ("model", "beta")}
    return {"models": models, "base_norms": base,
            "not_on_log_axis": sorted(r for r, m in models.items()
                                      if m["model"] == "vib" and not m["beta"])}


def make_figures(
    output_dir: str, *, zeros_to_ones_dir: str | None = None, targeted_dir: str | None = None,
    untargeted_dir: str | None = None, norms_dir: str | None = None,
    models_as_rows: bool = False, summary_dirs: list[str] | None = None,
    earlier_results: str | None = None,
) -> dict[str, str]:
    """Every figure the given experiment directories allow, plus the JSON summary.

    zeros_to_ones_dir: `bin/attack --targeted --source_class=0 --target_class=1
    --num_images=10` output (Figure 3, and Figure 4(a) unless `norms_dir` is given).
    targeted_dir / untargeted_dir: CW on the first N test images (Figure 4(b)).
    summary_dirs: further experiment directories (e.g. mean mode) whose records join the
    given ones in `attack_summaries.json`, the summary numbers of every attack.json.
    earlier_results: an earlier output_dir of this function. Runs of its attack_summaries.json
    fill in the experiments of the same directory base name whose directory lacks them or is
    gone (`summary_records`); every experiment it holds must be named by a given directory.
    Figure 3 is skipped if any of its runs is summary-only.
    A figure the results cannot support (`FigureUnavailableError`) is skipped; the summary's
    `skipped_figures` says why. Returns {name: path} of the files written.
    """
    sources = {"zeros_to_ones": zeros_to_ones_dir, "targeted": targeted_dir,
               "untargeted": untargeted_dir, "norms": norms_dir}
    if not any(sources.values()):
        raise ValueError("give at least one experiment directory (zeros-to-ones, targeted, "
                         "untargeted)")
    # Every directory is read once, up front, so a bad one fails before anything is written.
    every_dir = list(dict.fromkeys([d for d in sources.values() if d] + (summary_dirs or [])))
    earlier = earlier_records(earlier_results) if earlier_results else {}
    unused = sorted(set(earlier) - {experiment_name(d) for d in every_dir})
    if unused:
        raise ValueError(f"{earlier_results} holds experiments that no given directory names: "
                         f"{', '.join(unused)} (give their directories, gone or not, under the "
                         "same base names)")
    loaded = {d: records_with_earlier(d, earlier) for d in every_dir}
    experiments = {name: loaded[d] for name, d in sources.items() if d}
    earlier_figure3 = (_earlier_figure3(earlier_results, zeros_to_ones_dir,
                                        experiments["zeros_to_ones"])
                       if earlier_results and zeros_to_ones_dir else None)
    written: dict[str, str] = {}
    skipped: dict[str, str] = {}

    def draw(name: str, filename: str, plot: Callable[[str], None]) -> None:
        path = os.path.join(output_dir, filename)
        try:
            plot(path)
            written[name] = path
        except FigureUnavailableError as e:
            skipped[name] = str(e)
            if os.path.exists(path):  # an earlier drawing would no longer match the summary
                os.remove(path)

    carried: dict[str, str] = {}
    if earlier_figure3 is not None:
        written["figure3"] = os.path.join(output_dir, FIGURE3_PNG)
        write_bytes(written["figure3"], earlier_figure3)
        carried["figure3"] = os.path.abspath(earlier_results)
    elif "zeros_to_ones" in experiments:
        draw("figure3", FIGURE3_PNG, lambda path: figure3(
            experiments["zeros_to_ones"], path, models_as_rows=models_as_rows))
    norms = experiments.get("norms", experiments.get("zeros_to_ones"))
    if norms is not None:
        draw("figure4a", FIGURE4A_PNG, lambda path: figure4a(norms, path))
    if "targeted" in experiments or "untargeted" in experiments:
        others = {experiment_name(d): loaded[d] for d in summary_dirs or []}
        draw("figure4b", FIGURE4B_PNG, lambda path: figure4b(
            experiments.get("targeted", []), experiments.get("untargeted", []), path, others))
    summary = robustness_summary(experiments)
    summary["sources"] = {k: os.path.abspath(v) for k, v in sources.items() if v}
    if earlier_results:
        summary["sources"]["earlier_results"] = os.path.abspath(earlier_results)
        summary["from_earlier_results"] = {
            experiment_name(d): [r.run_name for r in loaded[d] if r.summary_only]
            for d in every_dir if any(r.summary_only for r in loaded[d])}
    summary["figures"] = {k: os.path.basename(v) for k, v in written.items()}
    summary["skipped_figures"] = skipped
    if carried:
        summary["carried_over_figures"] = carried
    written["summary"] = os.path.join(output_dir, SUMMARY_JSON)
    write_bytes(written["summary"], (_dumps(summary) + "\n").encode("utf-8"))
    written["attack_summaries"] = os.path.join(output_dir, ATTACK_SUMMARIES_JSON)
    write_bytes(written["attack_summaries"],
                (_dumps(attack_summaries({experiment_name(d): loaded[d] for d in every_dir}))
                 + "\n").encode("utf-8"))
    return written


# ----------------------------------------------------------------------- helpers
def _earlier_figure3(earlier_results: str, zeros_to_ones_dir: str,
                     records: list[AttackRecord]) -> bytes | None:
    """The earlier output's Figure 3 PNG if it was drawn from exactly these runs: every one
    of them comes from there (summary-only) and there it was drawn from a directory of the
    same base name. Figure 3 cannot be redrawn from summaries; this one is still right."""
    if not records or not all(r.summary_only for r in records):
        return None
    path = os.path.join(earlier_results, SUMMARY_JSON)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        earlier = json.load(f)
    source = earlier.get("sources", {}).get("zeros_to_ones")
    png = os.path.join(earlier_results, FIGURE3_PNG)
    if (earlier.get("figures", {}).get("figure3") != FIGURE3_PNG or source is None
            or experiment_name(source) != experiment_name(zeros_to_ones_dir)
            or not os.path.isfile(png)):
        return None
    with open(png, "rb") as f:
        return f.read()


def _require_vib(groups: dict[float, list[AttackRecord]], figure: str):
    if not groups:
        raise FigureUnavailableError(f"{figure} needs at least one VIB model with beta > 0")
    return groups


def _means(record: AttackRecord) -> dict[str, float]:
    return {n: record.mean_norm(n) for n in NORMS}


def _accuracy(record: AttackRecord) -> float:
    value = record.summary.get("accuracy_under_attack")
    return math.nan if value is None else float(value)


def _redrawn_accuracy(record: AttackRecord) -> float:
    """Accuracy under attack averaged over fresh posterior draws (sampling VIB models only)."""
    value = record.summary.get("redrawn_accuracy_under_attack")
    return math.nan if value is None else float(value)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if _finite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _mean_and_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if _finite(v)]
    if not finite:
        return math.nan, 0.0
    return float(np.mean(finite)), float(np.std(finite))


def _or_none(value: float | None) -> float | None:
    return float(value) if _finite(value) else None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)


def _save(fig: Figure, path: str) -> None:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=120)
    write_bytes(path, buffer.getvalue())
