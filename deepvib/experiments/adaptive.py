"""The adaptive robustness evaluation (`deepvib.attacks.adaptive`) of trained run directories,
for the robustness experiment of Alemi et al. (2017, section 4.2) done as Carlini et al.
(2019) and Athalye et al. (2018) ask: EOT on the expected predictive, success judged on an
independent large-sample predictive, a gradient-free check and a sanity suite.

For every run directory, the model (moving-average weights) is evaluated on the first
`num_images` test images and `<output_dir>/<run name>/adaptive.json` is written atomically.
`mode`: "sampled" attacks a VIB model's predictive p(y|x) = E_z[softmax(decoder(z))]
(logit-space Gaussian, `deepvib.models.logit_gaussian`); "mean" its mean mode (z = mu).
Deterministic models are evaluated through their logits in either mode. A finished
adaptive.json with the same parameters is kept (resume); other parameters need `overwrite`.
`write_summary` gathers the records of an output directory into adaptive_summary.json.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from deepvib.attacks.adaptive import (
    AdaptiveConfig,
    all_passed,
    evaluate,
    format_checks,
    recheck,
)
from deepvib.experiments.records import jsonable
from deepvib.training import atomic

ADAPTIVE_JSON = "adaptive.json"
SUMMARY_JSON = "adaptive_summary.json"
FIGURE4B_PNG = "figure4b_adaptive.png"
RECORD_FORMAT = "deepvib.adaptive/1"
MODES = ("sampled", "mean")

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Job:
    model_dir: str
    run_name: str
    output_path: str


def params(config: AdaptiveConfig, num_images: int, mode: str, dataset: str | None,
           data_dir: str | None) -> dict[str, Any]:
    return {"num_images": num_images, "mode": mode, "dataset": dataset, "data_dir": data_dir,
            **config.to_dict()}


# Parameters that only decide the sanity checks: a record that differs from a request only in
# these (or lacks them: written before they existed) is decided again, not recomputed.
DECISION_PARAMS = ("tolerance", "significance", "broken_accuracy")


def same_attacks(saved: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Do two parameter sets run the same attacks (whatever decides the checks)?"""
    def attacks(p: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k not in DECISION_PARAMS}

    return attacks(saved) == attacks(wanted)


def check_inputs(model_dirs: list[str], output_dir: str, num_images: int, mode: str) -> None:
    """Bad input as ValueError/FileNotFoundError, before TensorFlow does any work."""
    if not model_dirs:
        raise ValueError("--model_dirs is required: comma-separated bin/train run directories")
    if not output_dir:
        raise ValueError("--output_dir is required")
    if mode not in MODES:
        raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(num_images, bool) or num_images < 1:
        raise ValueError(f"--num_images must be >= 1, got {num_images}")
    names = [os.path.basename(os.path.normpath(d)) for d in model_dirs]
    if len(set(names)) != len(names):
        raise ValueError("run directories share a base name; results would collide")
    for d in model_dirs:
        if not os.path.isfile(os.path.join(d, "config.json")):
            raise FileNotFoundError(f"--model_dirs: {d} is not a bin/train run directory "
                                    "(config.json missing)")


def jobs_for(model_dirs: list[str], output_dir: str) -> list[Job]:
    out = []
    for d in model_dirs:
        name = os.path.basename(os.path.normpath(d))
        out.append(Job(d, name, os.path.join(output_dir, name, ADAPTIVE_JSON)))
    return out


def gaussian_logits(model, mode: str):
    """(GaussianLogitsFn, stochastic) for a loaded classifier."""
    from deepvib.attacks.adaptive import zero_noise
    from deepvib.models import VIBClassifier
    from deepvib.models.logit_gaussian import logit_gaussian

    if isinstance(model, VIBClassifier):
        if mode == "mean":
            return zero_noise(lambda images: logit_gaussian(model, images)[0]), False
        return (lambda images: logit_gaussian(model, images)), True
    return zero_noise(lambda images: model.logits(images, training=False)), False


def run(model_dirs: list[str], output_dir: str, config: AdaptiveConfig, *, num_images: int,
        mode: str = "sampled", dataset: str | None = None, data_dir: str | None = None,
        overwrite: bool = False, log: Log = print) -> list[dict[str, Any]]:
    """Evaluate every run (skipping finished ones); return the records."""
    import tf_keras as keras

    from deepvib.experiments.robustness import load_test_split
    from deepvib.training import run_dir

    check_inputs(model_dirs, output_dir, num_images, mode)
    wanted = params(config, num_images, mode, dataset, data_dir)
    records = []
    for job in jobs_for(model_dirs, output_dir):
        if os.path.exists(job.output_path):
            saved = atomic.read_json(job.output_path)
            if same_attacks(saved.get("params", {}), wanted) and not overwrite:
                checks = recheck(saved, config)  # this request's parameters and rules
                if saved["params"] != wanted or checks != saved["sanity"]:
                    decided = {k: wanted[k] for k in DECISION_PARAMS}
                    saved = {**saved, "params": wanted, "config": {**saved["config"], **decided},
                             "sanity": checks}
                    atomic.write_json(job.output_path, jsonable(saved))
                    log(f"{job.run_name}: sanity checks decided again from the stored outcomes "
                        "(this request's tolerance / significance / broken_accuracy and the "
                        "current rules)")
                    for line in format_checks(saved["sanity"]):
                        log(f"{job.run_name}: {line}")
                log(f"{job.run_name}: {job.output_path} already holds this evaluation; skipped")
                records.append(saved)
                continue
            if not overwrite:
                raise ValueError(f"{job.output_path} holds an evaluation with other parameters;"
                                 " choose a new --output_dir or pass --overwrite")
        train_config = run_dir.load_config(job.model_dir)
        split = load_test_split(dataset or train_config.dataset, data_dir or train_config.data_dir)
        if num_images > len(split.labels):
            raise ValueError(f"--num_images={num_images} but the test set has "
                             f"{len(split.labels)} images")
        keras.utils.set_random_seed(config.seed)
        model, _ = run_dir.load_model(job.model_dir)
        gaussian_fn, stochastic = gaussian_logits(model, mode)
        images, labels = split.images[:num_images], split.labels[:num_images]
        log(f"{job.run_name}: adaptive evaluation ({mode}) on {num_images} images")
        started = time.time()
        model_config = train_config.model
        result = evaluate(gaussian_fn, images, labels, config, stochastic=stochastic,
                          reference=model_config.model == "deterministic", log=log)
        record = {
            "format": RECORD_FORMAT, "run_name": job.run_name,
            "model_dir": os.path.abspath(job.model_dir), "model_kind": model_config.model,
            "beta": model_config.beta if model_config.stochastic else None,
            "trained": {"dataset": train_config.dataset, "epochs": train_config.epochs,
                        "seed": train_config.seed},
            "params": wanted, **result, "seconds": round(time.time() - started, 1),
        }
        atomic.write_json(job.output_path, jsonable(record))
        for line in format_checks(record["sanity"]):
            log(f"{job.run_name}: {line}")
        verdict = ("all sanity checks passed" if all_passed(record["sanity"])
                   else "SANITY CHECKS FAILED")
        log(f"{job.run_name}: {verdict}, {record['seconds']:.0f}s -> {job.output_path}")
        records.append(record)
    return records


def summary_of(record: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one adaptive.json that the docs and figures use."""
    attacks = record["attacks"]
    return {
        "run_name": record["run_name"], "model_kind": record["model_kind"],
        "beta": record["beta"], "trained": record["trained"], "mode": record["params"]["mode"],
        "stochastic": record["stochastic"], "n": record["n"],
        "clean_accuracy": attacks["clean"]["summary"]["robust_accuracy"],
        "clean_classifier_expected_accuracy":
            attacks["clean"]["summary"]["classifier_expected_accuracy"],
        "attacks": {k: v["summary"] for k, v in attacks.items()},
        "robust_accuracy": record["robust_accuracy"],
        "curves": {norm: {k: v for k, v in record["curves"][norm].items()}
                   for norm in ("l2", "linf")},
        "never_broken": record["curves"]["never_broken"],
        "sanity": record["sanity"], "all_sanity_checks_passed": all_passed(record["sanity"]),
        "params": record["params"], "seconds": record["seconds"],
    }


def load_records(output_dir: str) -> list[dict[str, Any]]:
    if not os.path.isdir(output_dir):
        raise FileNotFoundError(f"{output_dir} does not exist")
    found = sorted(d for d in os.listdir(output_dir)
                   if os.path.isfile(os.path.join(output_dir, d, ADAPTIVE_JSON)))
    if not found:
        raise FileNotFoundError(f"{output_dir} holds no <run>/{ADAPTIVE_JSON}")
    records = [atomic.read_json(os.path.join(output_dir, d, ADAPTIVE_JSON)) for d in found]
    return sorted(records, key=lambda r: (r["model_kind"] != "deterministic",
                                          r["params"]["mode"], r["beta"] or 0.0))


def paper_protocol_of(experiment_dir: str) -> list[dict[str, Any]]:
    """The numbers of an untargeted `bin/attack` experiment (the paper's protocol) that
    Figure 4(b) redrawn and the summary use, one dict per run."""
    from deepvib.experiments.records import load_records as load_attack_records

    out = []
    for r in load_attack_records(experiment_dir):
        if r.targeted:
            raise ValueError(f"{experiment_dir}: {r.run_name} is a targeted attack; the "
                             "adaptive evaluation is untargeted")
        p = r.raw.get("params") or {}
        if p.get("attack") != "cw_l2":
            raise ValueError(f"{experiment_dir}: {r.run_name} was attacked with "
                             f"{p.get('attack')!r}; the paper's protocol is cw_l2")
        out.append({"run_name": r.run_name, "model_kind": r.model_kind, "beta": r.beta,
                    "n": int(r.summary["n"]),
                    "accuracy_under_attack": r.summary["accuracy_under_attack"],
                    "redrawn_accuracy_under_attack":
                        r.summary.get("redrawn_accuracy_under_attack"),
                    "attack_samples": p.get("attack_samples"),
                    "binary_search_steps": p.get("binary_search_steps"),
                    "max_iterations": p.get("max_iterations"),
                    "seconds": r.raw.get("seconds")})
    return out


def write_summary(output_dirs: list[str], summary_dir: str,
                  paper: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """adaptive_summary.json and the accuracy-budget figures for the records of
    `output_dirs` (e.g. a sampled-mode and a mean-mode evaluation), written to `summary_dir`;
    with `paper` (`paper_protocol_of` an untargeted `bin/attack` run on the same models) also
    the paper-protocol numbers and Figure 4(b) redrawn."""
    from deepvib.experiments.adaptive_figures import budget_figure, figure4b_adaptive

    records = [r for d in output_dirs for r in load_records(d)]
    summaries = [summary_of(r) for r in records]
    paper = paper or []
    os.makedirs(summary_dir, exist_ok=True)
    written = {"summary": os.path.join(summary_dir, SUMMARY_JSON)}
    summary: dict[str, Any] = {"format": "deepvib.adaptive_summary/1", "models": summaries}
    if paper:
        summary["paper_protocol"] = paper
    atomic.write_json(written["summary"], jsonable(summary))
    for norm in ("l2", "linf"):
        path = os.path.join(summary_dir, f"accuracy_budget_{norm}.png")
        budget_figure(summaries, norm, path)
        written[f"accuracy_budget_{norm}"] = path
    if paper or any(s["model_kind"] == "vib" for s in summaries):
        l2 = set.intersection(*({r["budget"] for r in s["robust_accuracy"] if r["norm"] == "l2"}
                                for s in summaries))  # budgets every evaluation ran
        path = os.path.join(summary_dir, FIGURE4B_PNG)
        figure4b_adaptive(summaries, paper, tuple(sorted(l2)), path)
        written["figure4b"] = path
    return written


def label(summary: dict[str, Any]) -> str:
    """English name of a model and how it was attacked."""
    if summary["model_kind"] == "vib":
        how = "mean mode (z = μ)" if summary["mode"] == "mean" else "expected predictive, EOT"
        return f"VIB β={summary['beta']:g}, {how}"
    return f"{summary['model_kind']} (logits)"


def provenance(summaries: list[dict[str, Any]]) -> str:
    """One line: images, epochs, attack iterations, EOT / judge samples."""
    p = summaries[0]["params"]
    epochs = sorted({s["trained"]["epochs"] for s in summaries})
    return (f"first {p['num_images']} MNIST test images; models trained "
            f"{'/'.join(str(e) for e in epochs)} epochs; CW {p['cw_binary_search_steps']}×"
            f"{p['cw_max_iterations']} it. (κ {p.get('cw_confidence', 0.0):g}), "
            f"PGD {p['pgd_iterations']} it. × {p['pgd_restarts']} restart(s) "
            f"({p.get('pgd_loss', 'cross_entropy').replace('_', '-')} loss"
            f"{'es' if p.get('pgd_loss') == 'both' else ''}), "
            f"SPSA {p['spsa_iterations']} it. (ε {p['spsa_eps']:g}); EOT "
            f"{p['eot_samples']} samples (CRN: {'yes' if p['common_random_numbers'] else 'no'}),"
            f" success judged on {p['judge_samples']} independent samples")


def as_array(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], np.float64)
