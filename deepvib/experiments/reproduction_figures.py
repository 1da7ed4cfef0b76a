"""The drawings of the MNIST reproduction (Alemi et al. 2017, §4.1): Figure 1(a)/(b) error vs
beta, Figure 1(c) the information plane, Figure 1(d) I(Z,X) vs beta, Figure 2 the K=2
embeddings (95% posterior ellipses over the entropy of q(y|z)), and per-run learning curves.

Each function takes plain numbers and returns PNG bytes (matplotlib's Agg canvas, headless);
every figure carries its provenance in a footnote. Choosing the runs is `reproduction_report`'s
job. The 95% region of a 2-D Gaussian N(mu, L L^T) is {mu + r L u : |u| = 1} with
r^2 = -2 ln(0.05), the chi-square(2) quantile.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

ELLIPSE_MASS = 0.95
FOOTNOTE_WIDTH = 110  # characters per footnote line
LABEL_COLOURS = [f"C{i}" for i in range(10)]


@dataclass(frozen=True)
class Curve:
    """One line of a figure: y (and optional error bars) against x, with its legend."""

    label: str
    x: np.ndarray
    y: np.ndarray
    err: np.ndarray | None = None
    style: str = "-"
    colour: str | None = None
    marker: str = "o"


@dataclass(frozen=True)
class Panel:
    """One K=2 model of Figure 2."""

    title: str
    mean: np.ndarray  # [N, 2]
    scale_tril: np.ndarray  # [N, 2, 2]
    labels: np.ndarray  # [N]
    decoder_kernel: np.ndarray  # [2, C]
    decoder_bias: np.ndarray  # [C]


# ----------------------------------------------------------------------- maths
def ellipse_radius(mass: float = ELLIPSE_MASS) -> float:
    """Mahalanobis radius of the 2-D Gaussian region holding `mass` of the probability."""
    return math.sqrt(-2.0 * math.log(1.0 - mass))


def ellipse_points(mean: np.ndarray, scale_tril: np.ndarray, num_points: int = 48,
                   mass: float = ELLIPSE_MASS) -> np.ndarray:
    """[N, num_points, 2] boundary points of each Gaussian's `mass` region."""
    angles = np.linspace(0.0, 2.0 * np.pi, num_points, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles)])  # [2, P]
    return mean[:, None, :] + ellipse_radius(mass) * np.einsum("nij,jp->npi", scale_tril,
                                                                circle)


def decoder_entropy_bits(points: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """H[q(y|z)] in bits at each z of `points` [..., K], q(y|z) = softmax(z W + b)."""
    logits = points @ kernel + bias
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_q = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return -(np.exp(log_q) * log_q).sum(axis=-1) / math.log(2.0)


def embedding_extent(mean: np.ndarray, scale_tril: np.ndarray, pad: float = 0.05) -> tuple:
    """(xmin, xmax, ymin, ymax) holding every 95% ellipse (their exact bounding boxes)."""
    half = ellipse_radius() * np.sqrt(np.einsum("nij,nij->ni", scale_tril, scale_tril))
    low, high = (mean - half).min(axis=0), (mean + half).max(axis=0)
    margin = pad * (high - low) + 1e-6
    low, high = low - margin, high + margin
    return float(low[0]), float(high[0]), float(low[1]), float(high[1])


# ----------------------------------------------------------------------- rendering
def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return buffer.getvalue()


def _footnote(fig: Figure, text: str) -> None:
    fig.text(0.01, -0.01, textwrap.fill(text, FOOTNOTE_WIDTH), ha="left", va="top",
             fontsize=7, color="0.3")


def _draw(ax, curves: Sequence[Curve]) -> None:
    for c in curves:
        kwargs = {"color": c.colour, "linestyle": c.style, "marker": c.marker,
                  "markersize": 4, "label": c.label}
        if c.err is not None and np.any(c.err > 0):
            ax.errorbar(c.x, c.y, yerr=c.err, capsize=2, **kwargs)
        else:
            ax.plot(c.x, c.y, **kwargs)


def zeros_on_log_axis(curves: Sequence[Curve]) -> str:
    """A footnote sentence naming the points a log y-axis cannot show (y = 0), or ''."""
    parts = [f"{c.label} at β = {', '.join(f'{x:g}' for x in c.x[c.y == 0])}"
             for c in curves if np.any(c.y == 0)]
    return f" 0 is not drawn on the log axis: {'; '.join(parts)}." if parts else ""


def _log_y(ax) -> None:
    ax.set_yscale("log", nonpositive="mask")
    _plain_numbers(ax.yaxis)


def _plain_numbers(axis) -> None:
    """Log-axis labels as plain numbers (2, 5, 10, not 2x10^1); minor ticks labelled at 2
    and 5, all of them when the axis spans less than two decades, none beyond three decades
    (their labels would overlap)."""

    def minor(value: float, _) -> str:
        low, high = sorted(axis.get_view_interval())
        if low > 0 and high / low > 1e3:
            return ""
        narrow = low > 0 and high / low < 100
        return f"{value:g}" if narrow or f"{value:g}"[0] in "25" else ""

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(minor))


def line_figure(title: str, curves: Sequence[Curve], xlabel: str, ylabel: str, footnote: str,
                logx: bool = True, logy: bool = False, plain_x: bool = False,
                hlines: Sequence[tuple[float, str]] = ()) -> bytes:
    """One panel of lines (Figure 1 a-d)."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    _draw(ax, curves)
    for y, label in hlines:
        ax.axhline(y, color="0.5", linestyle=":", linewidth=1, label=label)
    if logx:
        ax.set_xscale("log")
        if plain_x:
            _plain_numbers(ax.xaxis)
    if logy:
        _log_y(ax)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    _footnote(fig, footnote)
    return _png(fig)


def figure2(panels: Sequence[Panel], footnote: str, grid_size: int = 160,
            num_classes: int = 10) -> bytes:
    """Posterior ellipses coloured by label over the greyscale entropy of q(y|z)."""
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.6 * cols + 1.0, 4.4 * rows + 0.6), layout="constrained")
    image = None
    for i, p in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        x0, x1, y0, y1 = embedding_extent(p.mean, p.scale_tril)
        gx, gy = np.meshgrid(np.linspace(x0, x1, grid_size), np.linspace(y0, y1, grid_size))
        entropy = decoder_entropy_bits(np.stack([gx, gy], axis=-1), p.decoder_kernel,
                                       p.decoder_bias)
        image = ax.imshow(entropy, extent=(x0, x1, y0, y1), origin="lower", cmap="Greys",
                          vmin=0.0, vmax=math.log2(num_classes), aspect="auto")
        colours = [LABEL_COLOURS[int(k) % 10] for k in p.labels]
        ax.add_collection(PolyCollection(ellipse_points(p.mean, p.scale_tril),
                                         facecolors="none", edgecolors=colours,
                                         linewidths=0.5, alpha=0.8))
        ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="$z_1$", ylabel="$z_2$")
        ax.set_title(p.title, fontsize=10)
    handles = [Line2D([], [], color=LABEL_COLOURS[k], label=f"digit {k}")
               for k in range(num_classes)]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    if image is not None:
        bar = fig.colorbar(image, ax=fig.axes, fraction=0.04, location="right")
        bar.set_label("entropy of q(y|z) (bits)")
    fig.suptitle(f"Figure 2: {ELLIPSE_MASS:.0%} posterior regions of p(z|x), K=2, "
                 f"coloured by true label")
    _footnote(fig, footnote)
    return _png(fig)


def learning_curves(title: str, errors: Sequence[Curve], second: Sequence[Curve],
                    second_label: str, footnote: str, first_label: str = "error (%)",
                    log_first: bool = True) -> bytes:
    """Errors per epoch (left, log scale) and the KL bound or the loss per epoch (right);
    a VAE puts its log-likelihoods on the left (`first_label`, linear)."""
    fig = Figure(figsize=(11, 4.2))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    _draw(left, errors)
    if log_first:
        _log_y(left)
    left.set(xlabel="epoch", ylabel=first_label, title=first_label.split(" (")[0])
    _draw(right, second)
    right.set(xlabel="epoch", ylabel=second_label, title=second_label)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    _footnote(fig, footnote)
    return _png(fig)
