"""Figures of the latent-space attack experiment (Sootla 2018, Figures 4.4-4.5 and the AS
matrices of Tables 4.4-4.6 as heat maps), drawn from `bin/latent_attack` outputs. Headless
matplotlib, PNG, written atomically. No TensorFlow.

    <run>_examples.png   rows of source / adversarial / adversarial reconstruction / target
                         (and the target's own reconstruction) at the operating c
    <run>_heatmaps.png   AS ignore-target and AS target per (source, target), means over repeats
    as_vs_c.png          overall AS ignore-target and AS target against c, one line per run
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deepvib.experiments import latent_experiment as lx  # noqa: E402
from deepvib.experiments import latent_scoring  # noqa: E402
from deepvib.training import atomic  # noqa: E402

COLUMNS = ("source", "adversarial", "adversarial\nreconstruction", "target",
           "target\nreconstruction")


def save(fig, path: str) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic.write_bytes(path, buffer.getvalue())


def example_rows(record: dict[str, Any], per_source: int = 1) -> list[int]:
    """Pair indices to show, `per_source` per source class s (repeat 0): the first pair with
    target class s + 1, then s + 2, ... (mod the number of classes), so that every target
    class appears."""
    pairs = record["pairs"]
    source, target = np.asarray(pairs["source_class"]), np.asarray(pairs["target_class"])
    repeat = np.asarray(pairs["repeat"])
    classes = np.unique(source)
    rows = []
    for s in classes:
        for step in range(1, len(classes)):
            if sum(source[rows] == s) >= per_source:
                break
            t = classes[(np.searchsorted(classes, s) + step) % len(classes)]
            hits = np.flatnonzero((source == s) & (target == t) & (repeat == 0))
            rows += hits[:1].tolist()
    return rows


def load_images(directory: str, record: dict[str, Any]) -> dict[str, np.ndarray]:
    path = os.path.join(directory, lx.IMAGES_NPZ)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing (written by bin/latent_attack)")
    with np.load(path) as data:
        images = {k: data[k] for k in data.files}
    if not np.array_equal(images["source_index"], record["pairs"]["source_index"]):
        raise ValueError(f"{path} does not hold the pairs of {lx.RECORD_JSON}")
    return images


def examples_figure(record: dict[str, Any], images: dict[str, np.ndarray], path: str,
                    per_source: int = 1) -> None:
    rows = example_rows(record, per_source)
    k = int(images["operating"])
    predicted = np.asarray(record["predicted"][k])
    pairs = record["pairs"]
    panels = [images["sources"], images["adversarial"][k], images["adversarial_reconstruction"],
              images["targets"], images["target_reconstruction"]]
    fig, axes = plt.subplots(len(rows), len(COLUMNS), layout="constrained",
                             figsize=(1.3 * len(COLUMNS), 1.3 * len(rows)), squeeze=False)
    l2 = np.asarray(record["attack"]["per_constant"]["l2"][k])
    for r, i in enumerate(rows):
        for col, panel in enumerate(panels):
            ax = axes[r, col]
            ax.imshow(panel[i, ..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(COLUMNS[col], fontsize=7)
        axes[r, 0].set_ylabel(f"{pairs['source_class'][i]}→{pairs['target_class'][i]}",
                              fontsize=7)
        axes[r, 1].set_xlabel(f"L2 {l2[i]:.2f}", fontsize=6)
        axes[r, 2].set_xlabel(f"classified {predicted[i]}", fontsize=6)
    c = record["attack"]["constants"][k]
    fig.suptitle(f"{lx.display_name(record)}, c = {c:g}", fontsize=8)
    save(fig, path)


def heatmaps_figure(record: dict[str, Any], path: str) -> None:
    tables = lx.tables_at(record)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, measure in zip(axes, latent_scoring.MEASURES, strict=True):
        table = tables[measure]
        image = ax.imshow(100 * table.mean, cmap="viridis", vmin=0, vmax=100)
        n = len(table.mean)
        for s in range(n):
            for t in range(n):
                if np.isfinite(table.mean[s, t]):
                    value = 100 * table.mean[s, t]
                    ax.text(t, s, f"{value:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if value < 50 else "black")
        ax.set_xticks(range(n)), ax.set_yticks(range(n))
        ax.set_xlabel("target class"), ax.set_ylabel("source class")
        ax.set_title(f"{latent_scoring.MEASURE_TITLES[measure]} (%), mean "
                     f"{100 * table.overall_mean:.1f}%", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(f"{lx.display_name(record)}, c = {record['operating_constant']:g}, "
                 f"{len(record['pairs']['source_index'])} pairs", fontsize=9)
    save(fig, path)


def as_vs_c_figure(records: Sequence[dict[str, Any]], path: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, measure in zip(axes, latent_scoring.MEASURES, strict=True):
        for record in records:
            rows = record["scores_by_constant"]
            c = [row["c"] for row in rows]
            mean = np.array([np.nan if row[measure] is None else row[measure] for row in rows])
            std = np.array([row[f"{measure}_std_over_repeats"] or 0.0 for row in rows])
            ax.errorbar(c, 100 * mean, yerr=100 * std, marker="o", capsize=2,
                        label=lx.display_name(record))
        ax.axvline(records[0]["operating_constant"], color="grey", ls=":", lw=1)
        ax.set_xscale("log"), ax.set_xlabel("c"), ax.set_ylabel("%")
        ax.set_ylim(0, 100)
        ax.set_title(latent_scoring.MEASURE_TITLES[measure], fontsize=9)
    axes[0].legend(fontsize=7)
    save(fig, path)


def draw_all(input_dir: str, output_dir: str, names: Sequence[str] | None = None,
             per_source: int = 1, without_images: bool = False) -> list[str]:
    """Every figure for the runs under `input_dir` (and the summary files, rewritten into
    `input_dir`); returns the paths written. `without_images`: draw only what the records
    hold (heat maps, AS against c), e.g. from a committed results directory that has no
    images.npz; otherwise a missing images.npz is an error."""
    records = lx.load_records(input_dir, names)
    images = {} if without_images else {
        r["run_name"]: load_images(os.path.join(input_dir, r["run_name"]), r)
        for r in records}  # every file is checked before anything is drawn
    written = []
    for record in records:
        name = record["run_name"]
        if name in images:
            path = os.path.join(output_dir, f"{name}_examples.png")
            examples_figure(record, images[name], path, per_source)
            written.append(path)
        path = os.path.join(output_dir, f"{name}_heatmaps.png")
        heatmaps_figure(record, path)
        written.append(path)
    path = os.path.join(output_dir, "as_vs_c.png")
    as_vs_c_figure(records, path)
    written.append(path)
    lx.write_summary(input_dir, records)
    return written
