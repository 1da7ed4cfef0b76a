"""Scoring latent-space attacks on VAEs as in Sootla (2018), Results, Tables 4.1-4.6.

Each adversarial image's reconstruction is classified by an independent classifier. With s the
source image's class and t the target image's class (s != t):

    AS target         = fraction of adversarial reconstructions classified as t,
    AS ignore-target  = fraction classified as any class other than s.

Per repeat r (an independent draw of image pairs), each (s, t) cell is the fraction over that
repeat's pairs; the tables give the mean and the standard deviation (ddof = 0) over repeats.
The thesis's layout, checked against its own numbers (Table 4.4's rows average to Table 4.2,
its columns to Table 4.3, and Table 4.2 to Table 4.1; the marginal's bracketed figure is the
average of the cells' standard deviations, e.g. source 0, disentangled: (0 + 5.98 + 3.34 + 1.99
+ 6.44 + 4.71 + 0.31 + 5.89 + 0) / 9 = 3.18%):

    source marginal of s = mean over t != s of the cell means (std: mean of the cell stds),
    target marginal of t = mean over s != t of the cell means (std: likewise),
    overall mean         = mean of the 90 off-diagonal cell means (= mean of source marginals).

The standard deviation over repeats of each marginal and of the overall mean is reported as
well (`*_std_over_repeats`). The 10x10 matrices and the marginals of Tables 4.2-4.6 are AS
ignore-target (their averages give Table 4.1's AS ignore-target column); this module produces
both measures in that layout. Plain NumPy: no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

MEASURES = ("ignore_target", "target")
MEASURE_TITLES = {"ignore_target": "AS ignore-target", "target": "AS target"}


@dataclasses.dataclass(frozen=True)
class ScoreTable:
    """One measure's Tables 4.1-4.6 numbers for one model (fractions in [0, 1]).

    per_repeat: [R, C, C] cell fractions per repeat (NaN on the diagonal and in empty cells).
    mean, std: [C, C] over repeats. source_*, target_*: [C] marginals. overall_*: scalars.
    """

    measure: str
    per_repeat: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    source_mean: np.ndarray
    source_std: np.ndarray
    source_std_over_repeats: np.ndarray
    target_mean: np.ndarray
    target_std: np.ndarray
    target_std_over_repeats: np.ndarray
    overall_mean: float
    overall_std: float
    overall_std_over_repeats: float

    def to_json_dict(self) -> dict[str, Any]:
        def plain(a):
            return jsonable_array(np.asarray(a))

        return {
            "measure": self.measure, "repeats": int(len(self.per_repeat)),
            "overall_mean": plain(self.overall_mean), "overall_std": plain(self.overall_std),
            "overall_std_over_repeats": plain(self.overall_std_over_repeats),
            "source_mean": plain(self.source_mean), "source_std": plain(self.source_std),
            "source_std_over_repeats": plain(self.source_std_over_repeats),
            "target_mean": plain(self.target_mean), "target_std": plain(self.target_std),
            "target_std_over_repeats": plain(self.target_std_over_repeats),
            "mean": plain(self.mean), "std": plain(self.std),
            "per_repeat": plain(self.per_repeat),
        }


def jsonable_array(a: np.ndarray) -> Any:
    """Nested lists of floats, NaN as None (strict JSON)."""
    if a.ndim == 0:
        value = float(a)
        return value if np.isfinite(value) else None
    return [jsonable_array(x) for x in a]


def check_predictions(
    source_classes: np.ndarray, target_classes: np.ndarray, predicted: np.ndarray,
    repeats: np.ndarray, num_classes: int,
) -> tuple[np.ndarray, ...]:
    """Integer arrays of one shape [P], classes in [0, C), s != t, repeats 0..R-1 all present."""
    arrays = [np.asarray(a) for a in (source_classes, target_classes, predicted, repeats)]
    names = ("source_classes", "target_classes", "predicted", "repeats")
    for name, a in zip(names, arrays, strict=True):
        if a.ndim != 1 or a.shape != arrays[0].shape:
            raise ValueError(f"{name} must be 1-D of the same length as source_classes "
                             f"{arrays[0].shape}, got {a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    if arrays[0].size == 0:
        raise ValueError("no pairs to score")
    for name, a in zip(names[:3], arrays[:3], strict=True):
        if a.min() < 0 or a.max() >= num_classes:
            raise ValueError(f"{name} must be in [0, {num_classes}), got [{a.min()}, {a.max()}]")
    same = np.flatnonzero(arrays[0] == arrays[1])
    if same.size:
        raise ValueError(f"pairs {same[:10].tolist()} have source class == target class")
    found = np.unique(arrays[3])
    if found[0] != 0 or not np.array_equal(found, np.arange(len(found))):
        raise ValueError(f"repeats must be numbered 0..R-1, got {found.tolist()}")
    return tuple(a.astype(np.int64) for a in arrays)


def success(measure: str, source_classes: np.ndarray, target_classes: np.ndarray,
            predicted: np.ndarray) -> np.ndarray:
    """Per pair: AS target (predicted == t) or AS ignore-target (predicted != s)."""
    if measure == "target":
        return predicted == target_classes
    if measure == "ignore_target":
        return predicted != source_classes
    raise ValueError(f"unknown measure {measure!r}; one of {MEASURES}")


def cell_fractions(
    hits: np.ndarray, source_classes: np.ndarray, target_classes: np.ndarray,
    repeats: np.ndarray, num_classes: int,
) -> np.ndarray:
    """[R, C, C] fraction of hits per (repeat, source, target); NaN where there are no pairs."""
    shape = (int(repeats.max()) + 1, num_classes, num_classes)
    counts, totals = np.zeros(shape), np.zeros(shape)
    np.add.at(totals, (repeats, source_classes, target_classes), 1.0)
    np.add.at(counts, (repeats, source_classes, target_classes), hits.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.maximum(totals, 1.0), np.nan)


def score_table(measure: str, per_repeat: np.ndarray) -> ScoreTable:
    """Means, standard deviations and marginals of [R, C, C] cell fractions (thesis layout)."""
    with warnings.catch_warnings():  # the diagonal is all-NaN by design
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(per_repeat, axis=0)
        std = np.nanstd(per_repeat, axis=0)
        source_per_repeat = np.nanmean(per_repeat, axis=2)  # [R, C]
        target_per_repeat = np.nanmean(per_repeat, axis=1)
        overall_per_repeat = np.nanmean(per_repeat, axis=(1, 2))
        return ScoreTable(
            measure=measure, per_repeat=per_repeat, mean=mean, std=std,
            source_mean=np.nanmean(mean, axis=1), source_std=np.nanmean(std, axis=1),
            source_std_over_repeats=np.nanstd(source_per_repeat, axis=0),
            target_mean=np.nanmean(mean, axis=0), target_std=np.nanmean(std, axis=0),
            target_std_over_repeats=np.nanstd(target_per_repeat, axis=0),
            overall_mean=float(np.nanmean(mean)), overall_std=float(np.nanmean(std)),
            overall_std_over_repeats=float(np.std(overall_per_repeat)),
        )


def score(
    source_classes: np.ndarray, target_classes: np.ndarray, predicted: np.ndarray,
    repeats: np.ndarray, num_classes: int = 10,
) -> dict[str, ScoreTable]:
    """Both measures' tables from the classifier's predictions on the adversarial
    reconstructions (one entry per attacked pair)."""
    s, t, p, r = check_predictions(source_classes, target_classes, predicted, repeats,
                                   num_classes)
    return {m: score_table(m, cell_fractions(success(m, s, t, p), s, t, r, num_classes))
            for m in MEASURES}


# --- Markdown in the thesis's layout -------------------------------------------------------

def percent(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{100 * value:.2f}%"


def means_table(rows: Sequence[tuple[str, dict[str, ScoreTable]]]) -> str:
    """Table 4.1: one row per model, AS ignore-target and AS target overall means."""
    lines = ["| Model | AS ignore-target | AS target |", "|---|---|---|"]
    for name, tables in rows:
        lines.append(f"| {name} | {percent(tables['ignore_target'].overall_mean)} "
                     f"(±{percent(tables['ignore_target'].overall_std_over_repeats)}) | "
                     f"{percent(tables['target'].overall_mean)} "
                     f"(±{percent(tables['target'].overall_std_over_repeats)}) |")
    return "\n".join(lines)


def marginals_table(
    rows: Sequence[tuple[str, dict[str, ScoreTable]]], side: str,
    measure: str = "ignore_target",
) -> str:
    """Table 4.2 (side='source') or 4.3 (side='target'): per model a row of means and a row of
    (mean cell standard deviations)."""
    if side not in ("source", "target"):
        raise ValueError(f"side must be 'source' or 'target', got {side!r}")
    num_classes = len(getattr(rows[0][1][measure], f"{side}_mean"))
    header = f"| {side.capitalize()} | " + " | ".join(str(c) for c in range(num_classes)) + " |"
    lines = [header, "|---" * (num_classes + 1) + "|"]
    for name, tables in rows:
        table = tables[measure]
        means, stds = getattr(table, f"{side}_mean"), getattr(table, f"{side}_std")
        lines.append(f"| {name} | " + " | ".join(percent(x) for x in means) + " |")
        lines.append(f"| {name} | " + " | ".join(f"({percent(x)})" for x in stds) + " |")
    return "\n".join(lines)


def matrix_table(table: ScoreTable) -> str:
    """Tables 4.4-4.6: rows are sources (mean row, then (std) row), columns targets."""
    num_classes = len(table.mean)
    lines = ["| Source \\ Target | " + " | ".join(str(c) for c in range(num_classes)) + " |",
             "|---" * (num_classes + 1) + "|"]
    for s in range(num_classes):
        lines.append(f"| {s} | " + " | ".join(percent(x) for x in table.mean[s]) + " |")
        lines.append("|  | " + " | ".join(
            "–" if not np.isfinite(x) else f"({percent(x)})" for x in table.std[s]) + " |")
    return "\n".join(lines)


def model_markdown(name: str, tables: dict[str, ScoreTable], note: str = "") -> str:
    """Everything for one model: means, marginals and both matrices."""
    parts = [f"# {name}", note, "## Means (Table 4.1)", means_table([(name, tables)])]
    for measure in MEASURES:
        title = MEASURE_TITLES[measure]
        parts += [f"## Source marginals, {title} (Table 4.2)",
                  marginals_table([(name, tables)], "source", measure),
                  f"## Target marginals, {title} (Table 4.3)",
                  marginals_table([(name, tables)], "target", measure),
                  f"## {title} per (source, target) (Tables 4.4-4.6)",
                  matrix_table(tables[measure])]
    return "\n\n".join(p for p in parts if p) + "\n"
