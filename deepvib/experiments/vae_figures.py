"""Figures of a trained VAE run (PNG, headless matplotlib): reconstructions (originals above,
reconstructions below), latent traversals (Sootla 2018 Figure 4.1: one row per continuous unit
sweeping -2..2 with the others at a test image's posterior mean; for JointVAE one row per
discrete category, sweeping the most informative continuous unit) and samples from the prior.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from deepvib.training import atomic  # noqa: E402

SWEEP = np.linspace(-2.0, 2.0, 10)


def _grid(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """[rows * cols, H, W, C] -> one [rows * H, cols * W, C] mosaic."""
    h, w, c = images.shape[1:]
    return images.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(
        rows * h, cols * w, c)


def _show(ax, mosaic: np.ndarray) -> None:
    if mosaic.shape[-1] == 1:
        ax.imshow(mosaic[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(np.clip(mosaic, 0, 1))
    ax.set_xticks([])
    ax.set_yticks([])


def _title(ax, title: str, provenance: str) -> None:
    """The figure's title with its provenance (model, data, epochs, run) beneath it."""
    ax.set_title(f"{title}\n[{provenance}]", fontsize=8)


def _save(fig, path: str) -> None:
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)


def reconstruction_figure(model, images: np.ndarray, provenance: str, path: str) -> None:
    reconstructions = model.reconstruct(tf.constant(images)).numpy()
    cols = len(images) // 2
    mosaic = _grid(np.concatenate([images[:cols], reconstructions[:cols],
                                   images[cols:2 * cols], reconstructions[cols:2 * cols]]),
                   4, cols)
    fig, ax = plt.subplots(figsize=(cols * 0.6, 4 * 0.6 + 0.6))
    _show(ax, mosaic)
    _title(ax, "test images (rows 1, 3) and their reconstructions (rows 2, 4)", provenance)
    _save(fig, path)


def traversal_codes(model, reference: np.ndarray,
                    swept_unit: int) -> tuple[np.ndarray, list[str]]:
    """Codes [rows * 10, D] and row labels: each continuous unit swept from the reference's
    mean code, then (JointVAE) each category of the first discrete variable with `swept_unit`
    swept."""
    base = model.mean_codes(tf.constant(reference[None])).numpy()[0]
    k = model.continuous_dim
    rows, labels = [], []
    for unit in range(k):
        codes = np.repeat(base[None], len(SWEEP), axis=0)
        codes[:, unit] = SWEEP
        rows.append(codes)
        labels.append(f"z{unit}")
    if model.discrete_dims:
        n = model.discrete_dims[0]
        for category in range(n):
            codes = np.repeat(base[None], len(SWEEP), axis=0)
            codes[:, k:k + n] = np.eye(n)[category]
            codes[:, swept_unit] = SWEEP
            rows.append(codes)
            labels.append(f"c={category}")
    return np.concatenate(rows).astype(np.float32), labels


def traversal_figure(model, images: np.ndarray, provenance: str, path: str) -> list[str]:
    """The discrete rows sweep the continuous unit whose posterior mean varies most over
    `images` (the most informative one)."""
    means = model.latent_mean(tf.constant(images)).numpy()[:, :model.continuous_dim]
    codes, labels = traversal_codes(model, images[0], int(np.argmax(means.var(axis=0))))
    decoded = model.decode(tf.constant(codes)).numpy()
    rows = len(labels)
    fig, ax = plt.subplots(figsize=(10 * 0.6 + 0.8, rows * 0.6 + 0.8))
    _show(ax, _grid(decoded, rows, len(SWEEP)))
    h = decoded.shape[1]
    ax.set_yticks([(i + 0.5) * h for i in range(rows)])
    ax.set_yticklabels(labels, fontsize=7)
    _title(ax, "latent traversals: each row sweeps one unit from -2 to 2\n"
           "(the others at a test image's code)", provenance)
    _save(fig, path)
    return labels


def prior_sample_figure(model, provenance: str, path: str, side: int = 8) -> None:
    samples = model.decode(model.prior_codes(side * side, seed=0)).numpy()
    fig, ax = plt.subplots(figsize=(side * 0.6, side * 0.6 + 0.6))
    _show(ax, _grid(samples, side, side))
    _title(ax, "samples from the prior (Bernoulli means)", provenance)
    _save(fig, path)


def draw(model, config, images: np.ndarray, epochs_done: int, output_dir: str) -> dict:
    """Writes the three PNGs and figures.json into `output_dir`; returns the record."""
    os.makedirs(output_dir, exist_ok=True)
    provenance = (f"{config.model.model}, {config.dataset}, {epochs_done} epochs, "
                  f"{os.path.basename(os.path.normpath(config.output_dir))}")
    paths = {name: os.path.join(output_dir, f"{name}.png")
             for name in ("reconstructions", "traversals", "prior_samples")}
    reconstruction_figure(model, images[:20], provenance, paths["reconstructions"])
    labels = traversal_figure(model, images[:500], provenance, paths["traversals"])
    prior_sample_figure(model, provenance, paths["prior_samples"])
    record = {"provenance": provenance, "figures": sorted(os.path.basename(p)
                                                          for p in paths.values()),
              "traversal_rows": labels}
    atomic.write_json(os.path.join(output_dir, "figures.json"), record)
    return record
