"""Accuracy-budget curves of the adaptive robustness evaluation (Carlini et al. 2019, for the
models of Alemi et al. 2017, section 4.2): robust accuracy vs L2 or L-inf budget, from every
attack per image (solid) and from the minimal-norm CW attack alone (dashed), with the
fixed-budget PGD results as markers. English legends and a provenance line."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deepvib.experiments.adaptive import label, provenance  # noqa: E402

NORM_NAMES = {"l2": "L2", "linf": "L∞"}


def budget_figure(summaries: list[dict[str, Any]], norm: str, path: str) -> None:
    """One curve per model; PNG written to `path`."""
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, s in enumerate(summaries):
        color = colors[i % len(colors)]
        curve = s["curves"][norm]
        ax.plot(curve["budgets"], curve["all_attacks"], color=color, label=label(s))
        ax.plot(curve["budgets"], curve["cw_only"], color=color, linestyle="--", linewidth=0.9)
        points = [(r["budget"], r["pgd"]) for r in s["robust_accuracy"]
                  if r["norm"] == norm and r["pgd"] is not None]
        if points:
            ax.plot(*zip(*points, strict=True), "o", color=color, markersize=5)
    ax.plot([], [], color="grey", label="strongest attack per image (CW, PGD, SPSA)")
    ax.plot([], [], color="grey", linestyle="--", label="minimal-norm CW alone")
    ax.plot([], [], "o", color="grey", label="fixed-budget PGD")
    ax.set_xlabel(f"{NORM_NAMES[norm]} budget ε")
    ax.set_ylabel("robust accuracy (judged on the expected predictive)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"Accuracy under attack vs {NORM_NAMES[norm]} budget", fontsize=11)
    fig.text(0.01, 0.01, provenance(summaries), fontsize=6.5, wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
