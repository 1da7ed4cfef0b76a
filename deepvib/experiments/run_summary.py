"""Run summaries: what lasts of a training run once its directory (checkpoints) is gone.

One JSON file per finished run, `<results_dir>/runs/<name>.json`, holding the run's
`config.json`, `metrics.json`, `flags.txt` and every line of `progress.jsonl` (no
checkpoints). For two-dimensional VIB encoders (Alemi et al. 2017, §4.1.2, Figure 2) it also
holds the posterior p(z|x) = N(mu, L L^T) of the first 1,000 test images (mean, Cholesky
factor L, label) and the decoder q(y|z) = softmax(W^T z + b) (W, b), computed with the run's
moving-average weights, so that Figure 2 can be drawn from the summary alone.

`bin/sweep` writes these; `bin/report` reads them (plain JSON and NumPy, no TensorFlow). The
progress keys are read through `progress_record`, which accepts both the Keras names
(`val_<metric>` for the held-out split, bare names for training) and the explicit ones
(`train_<metric>`, `test_<metric>` or `validation_<metric>`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import numpy as np

from deepvib.training import atomic

FORMAT = "deepvib.run_summary/1"
RUNS_SUBDIR = "runs"
EMBEDDING_IMAGES = 1000
META_KEYS = ("epoch", "seconds", "learning_rate", "started_at", "checkpoint_seconds")
SPLIT_PREFIXES = ("train_", "test_", "validation_")
MODEL_KINDS = ("vib", "deterministic", "dropout", "confidence_penalty", "label_smoothing")
SIGNIFICANT_DIGITS = 6  # of the stored embedding numbers (float32 has about 7)


class SummaryError(ValueError):
    """A run summary that cannot be read (malformed, or not a run summary at all)."""


# ----------------------------------------------------------------------- progress keys
def held_out_name(config: dict[str, Any]) -> str:
    """'validation' when the run held out part of its training set, else 'test'."""
    return "validation" if config.get("validation_size", 0) > 0 else "test"


def progress_record(record: dict[str, Any], held_out: str) -> dict[str, Any]:
    """One progress line with explicit names: `train_<m>`, `<held_out>_<m>` and the
    unprefixed `epoch`, `seconds`, `learning_rate`, whichever naming the trainer used."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in META_KEYS or key.startswith(SPLIT_PREFIXES):
            out[key] = value
        elif key.startswith("val_"):
            out[f"{held_out}_{key[len('val_'):]}"] = value
        else:
            out[f"train_{key}"] = value
    return out


def beta_name(beta: float) -> str:
    """'1e-3', '3e-9', '1e+0': short, and exact for one-digit mantissas."""
    return np.format_float_scientific(beta, trim="-", exp_digits=1).replace(".e", "e")


def flattened(d: dict, prefix: str = "") -> dict:
    """A nested config as {"dotted.key": value}, lists as tuples (hashable, comparable)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flattened(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = tuple(v) if isinstance(v, list) else v
    return out


# ----------------------------------------------------------------------- the record
@dataclasses.dataclass(frozen=True)
class RunSummary:
    name: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    progress: list[dict[str, Any]]  # normalised by progress_record
    flags_text: str | None
    embedding: dict[str, np.ndarray] | None
    path: str  # where it was read from (or the run directory it was built from)
    # bin/evaluate's S-sample test errors over repeated draws (deepvib.evaluation.
    # predictive_draws), when it was run: {"samples": {"12": {"mean", "std", "errors"}}, ...}
    predictive_errors: dict[str, Any] | None = None
    # The same on the run's validation split (`bin/evaluate --split=validation`): for choosing
    # between recipes, never shown as a test error.
    validation_predictive_errors: dict[str, Any] | None = None

    @property
    def model_config(self) -> dict[str, Any]:
        return self.config["model"]

    @property
    def kind(self) -> str:
        return self.model_config["model"]

    @property
    def is_classifier(self) -> bool:
        """One of the models of Table 1 (the only runs the report reads)."""
        return self.kind in MODEL_KINDS

    @property
    def is_vib(self) -> bool:
        return self.kind == "vib"

    @property
    def beta(self) -> float | None:
        return float(self.model_config["beta"]) if self.is_vib else None

    @property
    def bottleneck_dim(self) -> int:
        return int(self.model_config["bottleneck_dim"])

    @property
    def eval_samples(self) -> int:
        return int(self.model_config["eval_samples"])

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def epochs(self) -> int:
        return int(self.metrics["epochs"])

    @property
    def held_out(self) -> str:
        return held_out_name(self.config)

    @property
    def test_error(self) -> float:
        """The run's headline test error (VIB: the S-sample predictive)."""
        return float(self.metrics["test_error"])

    @property
    def wall_seconds(self) -> float:
        """Training time: the sum of the epochs' durations (evaluation included)."""
        return float(sum(r.get("seconds", 0.0) for r in self.progress))

    def split_metric(self, split: str, metric: str) -> float:
        """A final metric of metrics.json's `split` ('train', 'test' or 'validation'),
        e.g. 'error_12sample', 'kl_bits'; NaN when the run does not have it."""
        value = self.metrics.get(split, {}).get(metric)
        return float("nan") if value is None else float(value)

    @property
    def headline_metric(self) -> str:
        """The name of the error the run reports: a VIB's S-sample predictive at its own S,
        else the plain error (in metrics.json's splits and, prefixed, in its progress)."""
        return f"error_{self.eval_samples}sample" if self.is_vib else "error"

    def error(self, split: str, samples: int | None = None) -> float:
        """Final error on `split`: 1-shot (samples=1), S-sample (None: the run's S) or the
        baseline's plain error."""
        if samples is None or not self.is_vib:
            return self.split_metric(split, self.headline_metric)
        if samples == 1:
            return self.split_metric(split, "error_1shot")
        return self.split_metric(split, f"error_{samples}sample")

    def epoch_errors(self, split: str = "test") -> list[tuple[int, float]]:
        """(epoch, error on `split`) from the per-epoch progress: the headline error, for a
        VIB of one draw; epochs without it are left out."""
        key = f"{split}_{self.headline_metric}"
        return [(r["epoch"], float(r[key])) for r in self.progress if r.get(key) is not None]

    def error_over_draws(self, samples: int, split: str = "test") -> float | None:
        """Mean error on `split` of the `samples`-sample predictive over bin/evaluate's draws
        (None when not evaluated so)."""
        predictive = {"test": self.predictive_errors,
                      "validation": self.validation_predictive_errors}[split] or {}
        entry = predictive.get("samples", {}).get(str(samples))
        return None if entry is None else float(entry["mean"])


# ----------------------------------------------------------------------- building
# The run directory's files (deepvib.training.run_dir's names, read here without importing
# TensorFlow).
CONFIG, FLAGS_TEXT, METRICS, PROGRESS = "config.json", "flags.txt", "metrics.json", "progress.jsonl"
# bin/evaluate's files and the summary's keys, per split: one each, so that evaluating one
# split never replaces the other's numbers.
PREDICTIVE_SPLITS = {"test": ("predictive_errors.json", "predictive_errors"),
                     "validation": ("predictive_errors_validation.json",
                                    "predictive_errors_validation")}
PREDICTIVE_ERRORS = PREDICTIVE_SPLITS["test"][0]  # bin/evaluate's test split, when it was run


def read_progress(run_dir: str) -> list[dict[str, Any]]:
    path = os.path.join(run_dir, PROGRESS)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build_summary(run_dir: str, name: str | None = None,
                  embedding_images: int = EMBEDDING_IMAGES) -> dict[str, Any]:
    """The JSON summary of a finished run directory (K=2 VIB runs: with the embedding,
    which loads the model and the test images, so TensorFlow)."""
    metrics_path = os.path.join(run_dir, METRICS)
    if not os.path.isfile(metrics_path):
        raise FileNotFoundError(f"{run_dir} has no {METRICS}: the run has not finished")
    config = atomic.read_json(os.path.join(run_dir, CONFIG))
    flags_path = os.path.join(run_dir, FLAGS_TEXT)
    flags_text = None
    if os.path.isfile(flags_path):
        with open(flags_path, encoding="utf-8") as f:
            flags_text = f.read()
    summary: dict[str, Any] = {
        "format": FORMAT,
        "name": name or os.path.basename(os.path.normpath(run_dir)),
        "run_dir": run_dir,
        "config": config,
        "metrics": atomic.read_json(metrics_path),
        "flags_text": flags_text,
        "progress": read_progress(run_dir),
    }
    for split, (_, key) in PREDICTIVE_SPLITS.items():
        predictive = read_predictive_errors(run_dir, summary["metrics"], split)
        if predictive is not None:
            summary[key] = predictive
    model = config["model"]
    if model["model"] == "vib" and model["bottleneck_dim"] == 2:
        summary["embedding"] = embedding(run_dir, embedding_images)
    return summary


def read_predictive_errors(run_dir: str, metrics: dict[str, Any],
                           split: str = "test") -> dict[str, Any] | None:
    """bin/evaluate's numbers, if they were computed after the run's last epoch (a run trained
    further since has new weights: its old numbers are left out)."""
    path = os.path.join(run_dir, PREDICTIVE_SPLITS[split][0])
    if not os.path.isfile(path):
        return None
    predictive = atomic.read_json(path)
    return predictive if predictive.get("trained_epochs") == metrics.get("epochs") else None


def embedding(run_dir: str, num_images: int = EMBEDDING_IMAGES) -> dict[str, Any]:
    """Posterior mean and Cholesky factor of the first `num_images` test images, their
    labels, and the decoder's weights, under the run's moving-average weights."""
    from deepvib.data import load_splits
    from deepvib.models.heads import posterior_scale
    from deepvib.training.run_dir import load_model

    model, config = load_model(run_dir)
    splits = load_splits(config.dataset, config.data_dir, config.validation_size)
    test = splits.get("final_test", splits["test"])
    images, labels = test.images[:num_images], test.labels[:num_images]
    posterior = model.posterior(images)
    scale = np.asarray(posterior_scale(posterior))
    if scale.ndim == 2:  # diagonal covariance: per-dimension std
        scale = np.stack([np.diag(s) for s in scale])
    kernel, bias = model.decoder.get_weights()
    return {
        "split": "test",
        "indices": list(range(len(labels))),
        "labels": [int(v) for v in labels],
        "mean": _rounded(np.asarray(posterior.mean())),
        "scale_tril": _rounded(scale),
        "decoder_kernel": _rounded(kernel),
        "decoder_bias": _rounded(bias),
    }


def _rounded(array: np.ndarray) -> list:
    return np.vectorize(lambda v: float(f"{v:.{SIGNIFICANT_DIGITS}g}"))(
        np.asarray(array, np.float64)).tolist()


# ----------------------------------------------------------------------- files
def summary_path(results_dir: str, name: str) -> str:
    return os.path.join(results_dir, RUNS_SUBDIR, f"{name}.json")


def write_summary(results_dir: str, summary: dict[str, Any]) -> str:
    """Atomically, as JSON with one key per line and each list of numbers on one line."""
    path = summary_path(results_dir, summary["name"])
    atomic.write_text(path, dumps(summary) + "\n")
    return path


def dumps(value: Any, indent: str = "") -> str:
    """json.dumps(sort_keys=True) but indented only down to lists of numbers and the dicts of
    plain values in lists (diff-friendly and compact: a progress record or an embedding
    array is a line)."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {dumps(v, inner)}" for k, v in sorted(value.items())]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return "[\n" + ",\n".join(inner + (json.dumps(v, sort_keys=True) if _flat(v) else
                                             dumps(v, inner)) for v in value) + f"\n{indent}]"
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"))
    return json.dumps(value)


def _flat(value: Any) -> bool:
    """A dict of plain values (a progress record): one line."""
    return isinstance(value, dict) and not any(isinstance(v, (dict, list))
                                               for v in value.values())


# Config fields added since the first summaries were written, with the value every run before
# them had (the classes' defaults; tests/test_report.py checks they agree). Summaries are read
# with these filled in, so an older run and a newer one of the same recipe compare equal.
ADDED_FIELDS = {"adam_epsilon": 1e-7}
ADDED_CLASSIFIER_FIELDS = {"kl_estimator": "analytic"}


def with_added_fields(config: dict[str, Any]) -> dict[str, Any]:
    """A summary's config with the fields added since it was written, at their old values."""
    config = ADDED_FIELDS | config
    if config["model"].get("model") in MODEL_KINDS:
        config["model"] = ADDED_CLASSIFIER_FIELDS | config["model"]
    return config


def from_dict(raw: Any, where: str) -> RunSummary:
    """Checks a summary's structure (every field the report reads) and wraps it."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise SummaryError(f"{where} is not a {FORMAT} run summary (format {found!r})")
    try:
        config, metrics, progress = raw["config"], raw["metrics"], raw["progress"]
        _check(isinstance(config, dict) and isinstance(config["model"], dict),
               "config and config.model are not objects")
        config = with_added_fields(config)
        model = config["model"]
        _check(isinstance(raw["name"], str) and raw["name"], "name is not a string")
        _check(isinstance(model["model"], str), "model.model is not a string")
        if model["model"] not in MODEL_KINDS:  # e.g. a VAE: its own report reads the rest
            _check(isinstance(progress, list) and all(
                isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in progress),
                "progress is not a list of records with an integer epoch")
            return RunSummary(
                name=raw["name"], config=config, metrics=metrics,
                progress=[progress_record(r, held_out_name(config)) for r in progress],
                flags_text=raw.get("flags_text"), embedding=None, path=where)
        for key in ("bottleneck_dim", "eval_samples"):
            _check(isinstance(model[key], int), f"model.{key} is not an integer")
        _check(_is_number(model["beta"]), "model.beta is not a number")
        for key in ("seed", "epochs", "validation_size"):
            _check(isinstance(config[key], int), f"config.{key} is not an integer")
        _check(isinstance(config["dataset"], str), "config.dataset is not a string")
        _check(_is_number(metrics["test_error"]), "metrics.test_error is not a number")
        _check(isinstance(metrics["epochs"], int), "metrics.epochs is not an integer")
        for split in ("train", "test"):
            _check(isinstance(metrics[split], dict), f"metrics.{split} is not an object")
        _check(isinstance(progress, list) and all(
            isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in progress),
            "progress is not a list of records with an integer epoch")
        embedding_arrays = _embedding(raw.get("embedding"), model["bottleneck_dim"])
        predictive = {split: _predictive_errors(raw.get(key), key)
                      for split, (_, key) in PREDICTIVE_SPLITS.items()}
    except KeyError as e:
        raise SummaryError(f"{where} lacks the field {e}") from e
    except (TypeError, ValueError) as e:
        raise SummaryError(f"{where}: {e}") from e
    held_out = held_out_name(config)
    return RunSummary(
        name=raw["name"], config=config, metrics=metrics,
        progress=[progress_record(r, held_out) for r in progress],
        flags_text=raw.get("flags_text"), embedding=embedding_arrays, path=where,
        predictive_errors=predictive["test"],
        validation_predictive_errors=predictive["validation"])


def _predictive_errors(raw: Any, key: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    _check(isinstance(raw, dict) and isinstance(raw.get("samples"), dict),
           f"{key}.samples is not an object")
    for samples, entry in raw["samples"].items():
        _check(samples.isdigit() and isinstance(entry, dict) and _is_number(entry.get("mean")),
               f"{key}.samples[{samples!r}] is not {{'mean': number, ...}}")
    return raw


def _embedding(raw: Any, dim: int) -> dict[str, np.ndarray] | None:
    if raw is None:
        return None
    _check(isinstance(raw, dict), "embedding is not an object")
    out = {
        "labels": np.asarray(raw["labels"], np.int64),
        "mean": np.asarray(raw["mean"], np.float64),
        "scale_tril": np.asarray(raw["scale_tril"], np.float64),
        "decoder_kernel": np.asarray(raw["decoder_kernel"], np.float64),
        "decoder_bias": np.asarray(raw["decoder_bias"], np.float64),
    }
    n = len(out["labels"])
    _check(out["mean"].shape == (n, dim), f"embedding.mean is not [{n}, {dim}]")
    _check(out["scale_tril"].shape == (n, dim, dim),
           f"embedding.scale_tril is not [{n}, {dim}, {dim}]")
    _check(out["decoder_kernel"].ndim == 2 and out["decoder_kernel"].shape[0] == dim,
           f"embedding.decoder_kernel is not [{dim}, classes]")
    _check(out["decoder_bias"].shape == out["decoder_kernel"].shape[1:],
           "embedding.decoder_bias does not match the kernel")
    return out


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def load_summary(path: str) -> RunSummary:
    try:
        raw = atomic.read_json(path)
    except ValueError as e:  # json.JSONDecodeError
        raise SummaryError(f"{path} is not valid JSON: {e}") from e
    return from_dict(raw, path)


def load_summaries(results_dirs: list[str]) -> list[RunSummary]:
    """Every `runs/*.json` under the results directories; a run name found twice is an
    error (two different runs would be mixed up in the figures)."""
    summaries: dict[str, RunSummary] = {}
    for results_dir in results_dirs:
        runs = os.path.join(results_dir, RUNS_SUBDIR)
        if not os.path.isdir(results_dir):
            raise FileNotFoundError(f"{results_dir} does not exist or is not a directory")
        names = sorted(n for n in os.listdir(runs) if n.endswith(".json")) if os.path.isdir(
            runs) else []
        for file_name in names:
            summary = load_summary(os.path.join(runs, file_name))
            if summary.name in summaries:
                raise SummaryError(f"run {summary.name!r} is summarised twice: "
                                   f"{summaries[summary.name].path} and {summary.path}")
            summaries[summary.name] = summary
    return list(summaries.values())
