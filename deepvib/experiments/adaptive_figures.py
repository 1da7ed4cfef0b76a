"""Figures of the adaptive robustness evaluation (Carlini et al. 2019, for the models of Alemi
et al. 2017, section 4.2):

- accuracy-budget curves: robust accuracy vs L2 or L-inf budget, from every attack per image
  (solid) and from the minimal-norm CW attack alone (dashed), with the fixed-budget PGD
  results as markers;
- Figure 4(b) redrawn: accuracy under attack vs beta, the paper's protocol (CW on the
  12-sample predictive, success on one draw) beside the strongest adaptive attack (EOT,
  success on the expected predictive) at fixed L2 budgets and unbounded, and mean mode.

English legends and a provenance line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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


def _vib_series(summaries: list[dict[str, Any]],
                value: Callable[[dict[str, Any]], float]) -> tuple[list[float], list[float]]:
    """(betas, mean value per beta) of the VIB summaries, increasing beta."""
    by_beta: dict[float, list[float]] = {}
    for s in summaries:
        if s["model_kind"] == "vib" and s["beta"]:
            by_beta.setdefault(float(s["beta"]), []).append(value(s))
    betas = sorted(by_beta)
    return betas, [float(np.mean(by_beta[b])) for b in betas]


def strongest_at(summary: dict[str, Any], eps: float | None) -> float:
    """Robust accuracy under the strongest attack at L2 budget eps (None: unbounded)."""
    if eps is None:
        return float(summary["never_broken"])
    row = next((r for r in summary["robust_accuracy"]
                if r["norm"] == "l2" and abs(r["budget"] - eps) < 1e-9), None)
    if row is None:
        raise ValueError(f"no L2 budget {eps:g} in the adaptive evaluation of "
                         f"{summary['run_name']}")
    return float(row["strongest"])


def figure4b_adaptive(summaries: list[dict[str, Any]], paper: list[dict[str, Any]],
                      l2_budgets: tuple[float, ...], path: str) -> None:
    """Accuracy under attack vs beta (log axis); baselines as horizontal lines.

    `summaries`: adaptive summaries (`summary_of`), sampled and mean mode; `paper`: the
    paper-protocol numbers per run (`paper_protocol_of`).
    """
    sampled = [s for s in summaries if s["mode"] == "sampled"]
    mean_mode = [s for s in summaries if s["mode"] == "mean"]
    fig, ax = plt.subplots(figsize=(11.0, 5.2))
    styles = ["-", "-.", (0, (5, 1)), (0, (1, 3)), (0, (3, 1, 1, 1))]
    budgets: list[float | None] = [*l2_budgets, None]
    for i, eps in enumerate(budgets):
        style = ":" if eps is None else styles[i % len(styles)]
        what = "any L2" if eps is None else f"L2 ≤ {eps:g}"
        betas, acc = _vib_series(sampled, lambda s, e=eps: strongest_at(s, e))
        if betas:
            ax.plot(betas, acc, "s", linestyle=style, color="black",
                    label=f"VIB, EOT + expected-predictive judge, strongest attack, {what}")
        for kind, colour in (("deterministic", "red"), ("dropout", "tab:orange")):
            level = [strongest_at(s, eps) for s in sampled if s["model_kind"] == kind]
            if level:
                ax.axhline(float(np.mean(level)), color=colour, linestyle=style, linewidth=1.0,
                           label=f"{kind}, strongest attack, {what}")
    for eps in l2_budgets[-1:]:
        betas, acc = _vib_series(mean_mode, lambda s, e=eps: strongest_at(s, e))
        if betas:
            ax.plot(betas, acc, "v", linestyle="--", color="0.5",
                    label=f"VIB, mean mode (z = μ), strongest attack, L2 ≤ {eps:g}")
    betas, acc = _vib_series(paper, lambda p: p["accuracy_under_attack"])
    if betas:
        samples = sorted({p["attack_samples"] for p in paper if p["model_kind"] == "vib"})
        how = " / ".join("mean mode" if s == 0 else f"{s}-sample predictive" for s in samples)
        ax.plot(betas, acc, "o", linestyle="--", color="tab:blue",
                label=f"VIB, the paper's protocol: CW on the {how}, success on one draw")
    for kind, colour in (("deterministic", "red"), ("dropout", "tab:orange")):
        level = [p["accuracy_under_attack"] for p in paper if p["model_kind"] == kind]
        if level:
            ax.axhline(float(np.mean(level)), color=colour, linestyle="--", linewidth=0.8,
                       alpha=0.6, label=f"{kind}, the paper's protocol (CW on logits)")
    if not ax.lines:
        raise ValueError("Figure 4(b) needs at least one model")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\beta$")
    ax.set_ylabel("accuracy under untargeted attack")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("Figure 4(b) redrawn: the paper's protocol against an adaptive attack",
                 fontsize=10)
    text = provenance(summaries)
    cw = sorted({(p["binary_search_steps"], p["max_iterations"]) for p in paper})
    if cw:
        text += ("; paper's protocol: CW " + ", ".join(f"{a}×{b}" for a, b in cw)
                 + f" it., {'/'.join(str(n) for n in sorted({p['n'] for p in paper}))} images")
    fig.text(0.01, 0.01, text, fontsize=6, wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
