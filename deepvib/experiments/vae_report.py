"""The VAE table of a report (Sootla 2018's three MNIST variants and the other VAEs), drawn
from run summaries alone: reconstruction log-likelihood, KL_z, KL_c, ELBO, the IWAE bound,
active units, the discrete code's unsupervised accuracy and the training time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from deepvib.experiments import reproduction_figures as figs
from deepvib.experiments.run_summary import RunSummary

VAE_KINDS = ("vae", "beta_vae", "capacity_vae", "jointvae")
DUPONT_MNIST_ACCURACY = 0.887  # Dupont 2018 (JointVAE), as quoted; see docs/vae.md


def is_vae(run: RunSummary) -> bool:
    return run.kind in VAE_KINDS


def iwae_bound(metrics: dict[str, Any]) -> tuple[float, int | None]:
    """(the test IWAE bound, its number of samples) from metrics.json's `test_iwae_<k>`."""
    for key, value in metrics.items():
        if key.startswith("test_iwae_"):
            return float(value), int(key[len("test_iwae_"):])
    return math.nan, None


def vae_row(run: RunSummary) -> dict[str, Any]:
    m = run.metrics
    iwae, samples = iwae_bound(m)
    return {
        "name": run.name,
        "model": run.kind,
        "weight_decay": float(run.model_config.get("weight_decay", 0.0)),
        "epochs": int(m["epochs"]),
        "reconstruction_ll": float(m["test_reconstruction_ll"]),
        "kl_z": float(m["test_kl_z"]),
        "kl_c": float(m["test_kl_c"]),
        "elbo": float(m["test_elbo"]),
        "iwae": iwae,
        "iwae_samples": samples,
        "active_units": int(m["active_units"]),
        "continuous_dim": int(run.model_config["continuous_dim"]),
        "discrete_accuracy": m.get("discrete_accuracy"),
        "train_minutes": run.wall_seconds / 60.0,
    }


def vae_rows(runs: Sequence[RunSummary]) -> list[dict[str, Any]]:
    return [vae_row(r) for r in sorted(runs, key=lambda r: r.name) if is_vae(r)]


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def vae_table_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Test-split numbers in nats per image (MNIST resized to 32x32: 1,024 Bernoulli pixels)."""
    samples = sorted({r["iwae_samples"] for r in rows if r["iwae_samples"]})
    iwae_head = f"IWAE ({', '.join(map(str, samples))} samples)" if samples else "IWAE"
    lines = [
        f"| run | model | epochs | log p(x\\|z,c) | KL_z | KL_c | ELBO | {iwae_head} | "
        "active units | discrete-code accuracy | train time (min) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        model = r["model"] + (f", weight decay {r['weight_decay']:g}" if r["weight_decay"]
                              else "")
        accuracy = "–" if r["discrete_accuracy"] is None else \
            f"{100 * r['discrete_accuracy']:.1f}%"
        lines.append(
            f"| {r['name']} | {model} | {r['epochs']} | {_number(r['reconstruction_ll'])} | "
            f"{_number(r['kl_z'])} | {_number(r['kl_c'])} | {_number(r['elbo'])} | "
            f"{_number(r['iwae'])} | {r['active_units']}/{r['continuous_dim']} | {accuracy} | "
            f"{_number(r['train_minutes'], 1)} |")
    return "\n".join(lines) + "\n"


def vae_curves(run: RunSummary) -> bytes:
    """Per-epoch reconstruction log-likelihood and ELBO (left) and the KL terms with their
    capacities (right) of one VAE run."""
    epochs = np.array([r["epoch"] for r in run.progress], np.float64)
    h = run.held_out
    dot = "." if len(epochs) <= 30 else ""

    def series(key: str) -> np.ndarray:
        return np.array([r.get(key, np.nan) for r in run.progress], np.float64)

    train = "train (running mean over the epoch)"
    first = [figs.Curve(f"{h} ELBO", epochs, series(f"{h}_elbo"), colour="C0", marker=dot),
             figs.Curve(f"{h} log p(x|z,c)", epochs, series(f"{h}_reconstruction_ll"),
                        style="--", colour="C0", marker=dot),
             figs.Curve(f"{train}, log p(x|z,c)", epochs, series("train_reconstruction_ll"),
                        style="--", colour="C3", marker=dot)]
    second = [figs.Curve(f"KL_z, {h}", epochs, series(f"{h}_kl_z"), colour="C0", marker=dot),
              figs.Curve(f"KL_z, {train}", epochs, series("train_kl_z"), colour="C3",
                         marker=dot)]
    if run.model_config.get("discrete_dims"):
        second.append(figs.Curve(f"KL_c, {h}", epochs, series(f"{h}_kl_c"), colour="C2",
                                 marker=dot))
    if run.kind in ("capacity_vae", "jointvae"):
        second.append(figs.Curve("C_z(t)", epochs, series("train_capacity_z"), style=":",
                                 colour="C0"))
        if run.model_config.get("discrete_dims"):
            second.append(figs.Curve("C_c(t)", epochs, series("train_capacity_c"), style=":",
                                     colour="C2"))
    note = (f"Per-epoch progress of run {run.name} ({run.kind}, {run.config['dataset']}, "
            f"{len(epochs)} epochs). Nats per image.")
    return figs.learning_curves(f"{run.name}: {run.kind}, {run.wall_seconds / 60:.1f} min of "
                                "training", first, second, "KL (nats)", note,
                                first_label="log-likelihood (nats per image)",
                                log_first=False)
