"""Attacking trained run directories: the robustness experiment of Alemi et al. (2017, section
4.2), producing the data of Figures 3 and 4.

For every run directory (what `bin/train --output_dir` writes) the model is loaded with its
moving-average weights, the chosen test images are attacked through `attack_logits_fn` (VIB:
12-sample predictive; baselines: logits), and two files are written atomically:

    <output_dir>/<run name>/attack.json     parameters, model config and beta, clean accuracy,
                                            summary and per-example results
    <output_dir>/<run name>/adversarial.npz indices, original and adversarial images

`<run name>` is the run directory's base name. Every model is prepared (config, checkpoint,
data, images, targets, output) before the first attack starts, so bad input fails fast.
An existing attack.json with the same parameters is kept (the run is skipped), so an
interrupted sweep resumes; one with other parameters is an error unless `overwrite`.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from deepvib.attacks import AttackResult, cw_l2, fgsm, pgd
from deepvib.data.sources import Split, load_split
from deepvib.experiments.attack_config import AttackConfig, choose_targets, select_indices
from deepvib.experiments.model_logits import LogitsFn, attack_logits_fn, describe_logits_fn
from deepvib.experiments.records import (
    ADVERSARIAL_NPZ,
    ATTACK_JSON,
    RECORD_FORMAT,
    jsonable,
    with_config_defaults,
)
from deepvib.training import atomic, run_dir
from deepvib.training.atomic import write_bytes
from deepvib.training.config import TrainConfig

CLEAN_EVAL_BATCH = 500
PROGRESS_EVERY_S = 30.0  # CW progress lines at most this often
SUCCESS_SEED_OFFSET = 7919  # the success judge's draws are independent of the attacked ones
REDRAWS = 20  # fresh evaluations of a sampling VIB's predictive on the returned images

Log = Callable[[str], None]


def print_now(line: str) -> None:
    """Default log: stdout, flushed (progress shows up in a redirected log file)."""
    print(line, flush=True)


@dataclasses.dataclass(frozen=True)
class AttackJob:
    """One model to attack, with everything checked and loaded except the model itself."""

    model_dir: str
    run_name: str
    train_config: TrainConfig
    dataset: str
    data_dir: str | None
    indices: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    targets: np.ndarray | None
    output_dir: str

    @property
    def record_path(self) -> str:
        return os.path.join(self.output_dir, ATTACK_JSON)


def run_name(model_dir: str) -> str:
    return os.path.basename(os.path.normpath(model_dir))


def resolve_data(config: AttackConfig, train_config: TrainConfig) -> tuple[str, str | None]:
    """(dataset, data_dir): the flags if given, else what the run was trained on."""
    if config.dataset is not None:
        return config.dataset, config.data_dir
    return train_config.dataset, config.data_dir or train_config.data_dir


def prepare_jobs(
    model_dirs: list[str], config: AttackConfig, output_dir: str, overwrite: bool = False,
) -> list[AttackJob]:
    """Check every run and load its test images; raise ValueError/RuntimeError on bad input."""
    if not model_dirs:
        raise ValueError("--model_dirs is empty; give one or more run directories")
    names = [run_name(d) for d in model_dirs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"run directories share the base name(s) {duplicates}; their "
                         f"results would overwrite each other in --output_dir")
    return [_prepare_job(d, config, output_dir, overwrite) for d in model_dirs]


@functools.lru_cache(maxsize=4)
def load_test_split(dataset: str, data_dir: str | None) -> Split:
    """The test split, loaded once per process (several runs usually share it)."""
    return load_split(dataset, "test", data_dir)


def _prepare_job(
    model_dir: str, config: AttackConfig, output_dir: str, overwrite: bool,
) -> AttackJob:
    train_config = run_dir.load_config(model_dir)
    if tf.train.latest_checkpoint(os.path.join(model_dir, run_dir.CHECKPOINTS)) is None:
        raise run_dir.RunDirError(f"{model_dir} has no checkpoint yet")
    dataset, data_dir = resolve_data(config, train_config)
    test = load_test_split(dataset, data_dir)
    indices = select_indices(test.labels, config.num_images, config.source_class)
    labels = test.labels[indices]
    targets = (choose_targets(labels, config.seed, config.target_class,
                              train_config.model.num_classes) if config.targeted else None)
    job = AttackJob(model_dir, run_name(model_dir), train_config, dataset, data_dir, indices,
                    test.images[indices], labels, targets,
                    os.path.join(output_dir, run_name(model_dir)))
    _check_existing(job, config, overwrite)
    return job


def _check_existing(job: AttackJob, config: AttackConfig, overwrite: bool) -> None:
    if overwrite or not os.path.exists(job.record_path):
        return
    if not is_done(job, config):
        raise ValueError(f"{job.record_path} holds an attack with other parameters or another "
                         "model; choose a new --output_dir or pass --overwrite")


def is_done(job: AttackJob, config: AttackConfig) -> bool:
    """Whether the job's attack.json already holds this experiment on this model."""
    if not os.path.exists(job.record_path):
        return False
    saved = atomic.read_json(job.record_path)
    model = job.train_config.model
    return (saved.get("params") == jsonable(config.params())
            and with_config_defaults(saved.get("model"), model) == model.to_dict())


def run_jobs(
    jobs: list[AttackJob], config: AttackConfig, overwrite: bool = False, log: Log = print_now,
) -> list[dict[str, Any]]:
    """Attack every job's model (skipping finished ones unless `overwrite`); return records."""
    records = []
    for job in jobs:
        if not overwrite and is_done(job, config):
            log(f"{job.run_name}: {job.record_path} already holds this attack; skipped")
            records.append(complete_redraws(job, config, log))
            continue
        records.append(attack_job(job, config, log))
    return records


def attack_job(job: AttackJob, config: AttackConfig, log: Log = print_now) -> dict[str, Any]:
    """Load the job's model, attack its images, write attack.json and adversarial.npz."""
    started = time.time()
    keras.utils.set_random_seed(config.seed)  # the same random stream for every model
    model, _ = run_dir.load_model(job.model_dir)
    logits_fn = attack_logits_fn(model, config.attack_samples, config.seed)
    clean_predicted = predict(logits_fn, job.images)
    log(f"{job.run_name}: {config.experiment_name} on {len(job.images)} images "
        f"(clean accuracy {np.mean(clean_predicted == job.labels):.3f})")
    adversarial, result = run_attack(logits_fn, job, config, log,
                                     success_fn=success_scores_fn(model, job, config))
    record = build_record(job, config, result, clean_predicted, time.time() - started)
    if samples_posterior(job, config):
        add_redraws(record, redrawn_predictions(logits_fn, adversarial, REDRAWS))
    write_adversarial(os.path.join(job.output_dir, ADVERSARIAL_NPZ), job.indices, job.images,
                      adversarial)
    atomic.write_json(job.record_path, record)
    summary = record["summary"]
    log(f"{job.run_name}: success rate {summary['success_rate']:.3f}, accuracy under attack "
        f"{summary['accuracy_under_attack']:.3f}, {record['seconds']:.0f}s -> {job.record_path}")
    return record


def success_scores_fn(model, job: AttackJob, config: AttackConfig) -> LogitsFn | None:
    """CW's success judge: an independent `success_samples`-sample predictive, or None."""
    if not judges_success_apart(job, config):
        return None
    return attack_logits_fn(model, config.success_samples, config.seed + SUCCESS_SEED_OFFSET)


def judges_success_apart(job: AttackJob, config: AttackConfig) -> bool:
    """Whether CW's success is judged on a separate predictive (`--success_samples`); a
    deterministic predictive is its own best judge."""
    return (config.attack == "cw_l2" and bool(config.success_samples)
            and samples_posterior(job, config))


def samples_posterior(job: AttackJob, config: AttackConfig) -> bool:
    """Whether the attacked predictive is random (a VIB model with attack_samples > 0)."""
    return job.train_config.model.stochastic and config.attack_samples > 0


def redrawn_predictions(logits_fn: LogitsFn, images: np.ndarray, draws: int) -> np.ndarray:
    """[draws, N] predicted classes, each row from fresh posterior samples."""
    return np.stack([predict(logits_fn, images) for _ in range(draws)])


def add_redraws(record: dict[str, Any], predictions: np.ndarray) -> None:
    """Judge a sampling model's adversarials on `draws` fresh evaluations, not one.

    The search keeps the smallest perturbation for which one 12-sample draw crossed the
    boundary, so a single re-evaluation (what `success` holds) is itself a coin flip near the
    boundary. Per example: the fraction of fresh draws that predict the label
    (`redrawn_accuracy`) and that count as an attack success (`redrawn_success`); the summary
    holds their means (expected accuracy under attack / success rate over posterior draws).
    """
    ex = record["per_example"]
    labels = np.asarray(ex["labels"])
    targets = ex.get("targets")
    correct = predictions == labels
    success = ~correct if targets is None else predictions == np.asarray(targets)
    ex["redrawn_accuracy"] = correct.mean(0).tolist()
    ex["redrawn_success"] = success.mean(0).tolist()
    record["summary"].update(redraws=int(len(predictions)),
                             redrawn_accuracy_under_attack=float(correct.mean()),
                             redrawn_success_rate=float(success.mean()))


def complete_redraws(job: AttackJob, config: AttackConfig, log: Log) -> dict[str, Any]:
    """A finished record, with the redrawn evaluation added if it predates it."""
    record = atomic.read_json(job.record_path)
    if not samples_posterior(job, config) or "redraws" in record["summary"]:
        return record
    keras.utils.set_random_seed(config.seed)
    model, _ = run_dir.load_model(job.model_dir)
    logits_fn = attack_logits_fn(model, config.attack_samples, config.seed + 1)
    with np.load(os.path.join(job.output_dir, ADVERSARIAL_NPZ)) as saved:
        adversarial = saved["adversarial"]
    add_redraws(record, redrawn_predictions(logits_fn, adversarial, REDRAWS))
    atomic.write_json(job.record_path, jsonable(record))
    log(f"{job.run_name}: added {REDRAWS} redrawn evaluations to {job.record_path}")
    return record


def predict(logits_fn: LogitsFn, images: np.ndarray) -> np.ndarray:
    """Predicted classes (argmax of `logits_fn`) in batches."""
    out = [np.argmax(np.asarray(logits_fn(tf.constant(images[i : i + CLEAN_EVAL_BATCH]))), 1)
           for i in range(0, len(images), CLEAN_EVAL_BATCH)]
    return np.concatenate(out).astype(np.int64)


def run_attack(
    logits_fn: LogitsFn, job: AttackJob, config: AttackConfig, log: Log = print_now,
    success_fn: LogitsFn | None = None,
) -> tuple[np.ndarray, AttackResult]:
    """The configured attack on the job's images; CW logs its progress."""
    x, y, t = job.images, job.labels, job.targets
    if config.attack == "fgsm":
        return fgsm(logits_fn, x, y, config.eps, norm=_norm(config.norm), targets=t)
    if config.attack == "pgd":
        return pgd(logits_fn, x, y, config.eps, config.eps_iter, config.nb_iter,
                   norm=_norm(config.norm), rand_init=config.rand_init, seed=config.seed,
                   targets=t)
    return _cw_with_progress(logits_fn, job, config, log, success_fn)


def _cw_with_progress(
    logits_fn: LogitsFn, job: AttackJob, config: AttackConfig, log: Log,
    success_fn: LogitsFn | None = None,
) -> tuple[np.ndarray, AttackResult]:
    """`cw_l2` on all the job's images (one compiled attack), logging progress at most every
    PROGRESS_EVERY_S seconds."""
    started = time.time()
    judged = ("in-search success, each on one random draw of the predictive"
              if samples_posterior(job, config) and not judges_success_apart(job, config)
              else "in-search success")
    last = [0.0]

    def report(done: int, found: int) -> None:
        now = time.time()
        if done < len(job.images) and now - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = now
        log(f"{job.run_name}: {done}/{len(job.images)} images attacked, search kept a "
            f"perturbation for {found} ({judged}; final success is judged on the returned "
            f"images at the end), {now - started:.0f}s")

    return cw_l2(
        logits_fn, job.images, job.labels, job.targets,
        binary_search_steps=config.binary_search_steps,
        max_iterations=config.max_iterations, learning_rate=config.learning_rate,
        initial_const=config.initial_const, confidence=config.confidence,
        abort_early=config.abort_early, batch_size=config.cw_batch_size, on_progress=report,
        success_fn=success_fn,
    )


def _norm(name: str) -> float:
    return np.inf if name == "inf" else float(int(name))


def build_record(
    job: AttackJob, config: AttackConfig, result: AttackResult, clean_predicted: np.ndarray,
    seconds: float,
) -> dict[str, Any]:
    """The content of attack.json (NaN, e.g. a mean norm without successes, becomes null).

    summary: `AttackResult.summary()` plus `clean_accuracy` (on the attacked images, with the
    attacked `logits_fn`) and `n_perturbed`, the examples returned with a nonzero
    perturbation, i.e. those for which the search found an adversarial. A stochastic model's
    success is re-judged on fresh posterior samples, so there `n_perturbed` can exceed
    `n_success`: the search keeps the smallest perturbation that fooled one draw of 12 samples.
    """
    model = job.train_config.model
    clean_accuracy = float(np.mean(clean_predicted == job.labels))
    result_dict = result.to_json_dict()
    per_example = {"index": job.indices.tolist(), "clean_predicted": clean_predicted.tolist(),
                   **result_dict["per_example"]}
    record = {
        "format": RECORD_FORMAT,
        "run_name": job.run_name,
        "model_dir": os.path.abspath(job.model_dir),
        "model": model.to_dict(),
        "model_kind": model.model,
        "beta": model.beta if model.stochastic else None,
        "trained": {"dataset": job.train_config.dataset, "epochs": job.train_config.epochs,
                    "seed": job.train_config.seed},
        "data": {"dataset": job.dataset, "data_dir": job.data_dir, "split": "test"},
        "experiment": config.experiment_name,
        "params": config.params(),
        "attack_params": result_dict["params"],
        "logits": describe_logits_fn(model, config.attack_samples),
        "search_success_judged_on": (
            {"kind": "vib_log_mean_softmax", "num_samples": config.success_samples,
             "independent_draws": True}
            if judges_success_apart(job, config) else "attacked_scores"),
        "summary": {**result_dict["summary"], "clean_accuracy": clean_accuracy,
                    "n_perturbed": int(np.sum(result.l2 > 0))},
        "per_example": per_example,
        "seconds": round(seconds, 1),
    }
    return jsonable(record)


def write_adversarial(
    path: str, indices: np.ndarray, original: np.ndarray, adversarial: np.ndarray,
) -> None:
    """adversarial.npz (compressed), written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, indices=indices, original=original.astype(np.float32),
                        adversarial=adversarial.astype(np.float32))
    write_bytes(path, buffer.getvalue())

