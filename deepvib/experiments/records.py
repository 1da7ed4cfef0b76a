"""The files `bin/attack` writes for the robustness experiment of Alemi et al. (2017, section
4.2), read back for Figures 3 and 4: one `<run name>/attack.json` (+ `adversarial.npz`) per
model under an experiment directory. Plain Python, JSON and NumPy (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

RECORD_FORMAT = "deepvib.attack/1"
ATTACK_JSON = "attack.json"
ADVERSARIAL_NPZ = "adversarial.npz"
NORMS = ("l0", "l2", "linf")
# Order of the models in figures and summaries: baselines first, then VIB by increasing beta.
MODEL_ORDER = ("deterministic", "dropout", "confidence_penalty", "label_smoothing", "vib")


@dataclasses.dataclass(frozen=True)
class AttackRecord:
    """One model's attack.json: what the figures need, plus the raw dict."""

    run_name: str
    model_kind: str
    beta: float | None
    summary: dict[str, Any]
    labels: np.ndarray
    targets: np.ndarray | None
    predicted: np.ndarray
    indices: np.ndarray
    directory: str
    raw: dict[str, Any]
    summary_only: bool = False  # rebuilt from attack_summaries.json: no per-example results

    @classmethod
    def from_dict(cls, raw: dict[str, Any], directory: str) -> AttackRecord:
        if raw.get("format") != RECORD_FORMAT:
            raise ValueError(f"{directory}/{ATTACK_JSON} is not a {RECORD_FORMAT} record "
                             f"(format {raw.get('format')!r})")
        try:
            ex = raw["per_example"]
            return cls(
                run_name=raw["run_name"], model_kind=raw["model_kind"], beta=raw["beta"],
                summary=raw["summary"], labels=np.asarray(ex["labels"], np.int64),
                targets=None if ex["targets"] is None else np.asarray(ex["targets"], np.int64),
                predicted=np.asarray(ex["predicted"], np.int64),
                indices=np.asarray(ex["index"], np.int64), directory=directory, raw=raw,
            )
        except KeyError as e:
            raise ValueError(f"{directory}/{ATTACK_JSON} lacks the field {e}") from e

    @property
    def targeted(self) -> bool:
        return self.targets is not None

    @property
    def is_vib(self) -> bool:
        return self.model_kind == "vib"

    @property
    def label(self) -> str:
        """Short display name: 'deterministic', 'dropout', 'VIB β=1e-03'."""
        return f"VIB β={self.beta:.0e}" if self.is_vib else self.model_kind

    def mean_norm(self, norm: str) -> float:
        """Mean over successful examples (NaN if none), as stored in the summary."""
        value = self.summary.get(f"mean_{norm}")
        return float("nan") if value is None else float(value)

    def load_images(self) -> tuple[np.ndarray, np.ndarray]:
        """(original, adversarial) float32 images from adversarial.npz."""
        path = os.path.join(self.directory, ADVERSARIAL_NPZ)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing (written by bin/attack with attack.json)")
        with np.load(path) as data:
            if not np.array_equal(data["indices"], self.indices):
                raise ValueError(f"{path} does not hold the images of {ATTACK_JSON}")
            return data["original"], data["adversarial"]


def jsonable(value: Any) -> Any:
    """Plain JSON types (NumPy scalars and arrays converted), with non-finite floats as None
    (strict JSON has no NaN): the form of every experiment record written."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return value


def sort_key(record: AttackRecord) -> tuple:
    kind = MODEL_ORDER.index(record.model_kind) if record.model_kind in MODEL_ORDER else 99
    return (kind, record.beta if record.beta is not None else 0.0, record.run_name)


def load_record(directory: str) -> AttackRecord:
    path = os.path.join(directory, ATTACK_JSON)
    with open(path, encoding="utf-8") as f:
        return AttackRecord.from_dict(json.load(f), directory)


def load_records(experiment_dir: str) -> list[AttackRecord]:
    """Every `<run name>/attack.json` under `experiment_dir` (a `bin/attack --output_dir`),
    ordered deterministic, dropout, other baselines, then VIB by increasing beta."""
    if not os.path.isdir(experiment_dir):
        raise FileNotFoundError(f"{experiment_dir} does not exist or is not a directory")
    found = sorted(d for d in os.listdir(experiment_dir)
                   if os.path.isfile(os.path.join(experiment_dir, d, ATTACK_JSON)))
    if not found:
        raise FileNotFoundError(f"{experiment_dir} holds no <run>/{ATTACK_JSON} "
                                "(the --output_dir of bin/attack)")
    records = [load_record(os.path.join(experiment_dir, d)) for d in found]
    return sorted(records, key=sort_key)


def with_config_defaults(saved: Any, config: Any) -> Any:
    """A saved config dict with the fields added to `config`'s dataclass since it was written
    (e.g. `mixed_precision`, `kl_estimator`) filled in with their defaults, so that an older
    record of the same model still counts as the same experiment."""
    if not isinstance(saved, dict):
        return saved
    defaults = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return jsonable(defaults) | saved
