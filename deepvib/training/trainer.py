"""The training loop of every model family (classifiers, VAEs): `keras.Model.fit` over the
model's own `train_step`, with per-epoch checkpoints (resume after interruption), evaluation on
the moving-average weights, TensorBoard scalars, a progress line per epoch, and the final
`metrics.json`. What each family reports comes from the model (`progress_fields`,
`headline_metrics`) and from `deepvib.evaluation.final_evaluation`.

Optimisation follows either the paper (§4.1.1: Adam, lr 1e-3, batch 100, 200 epochs) or the
authors' demo code (Adam lr 1e-4, beta1 0.5, x0.97 every 2 epochs, weight EMA 0.999); both are
flags, see configs/.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable, Sequence

import tensorflow as tf
import tf_keras as keras

from deepvib import evaluation
from deepvib.data import Split, fit_split, load_splits, make_dataset
from deepvib.models import TrainableModel, build_model
from deepvib.training import atomic, run_dir
from deepvib.training.config import TrainConfig
from deepvib.training.distribute import make_strategy, shard_by_data
from deepvib.training.optimizers import FusedAdam

EVAL_BATCH = 1000
KILL_AFTER_EPOCH_ENV = "DEEPVIB_KILL_AFTER_EPOCH"  # tests: SIGKILL right after a checkpoint


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    if config.lr_decay_rate == 1.0:
        return config.learning_rate
    return keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate,
        decay_steps=max(1, round(config.lr_decay_epochs * steps_per_epoch)),
        decay_rate=config.lr_decay_rate,
        staircase=True,
    )


class AveragedWeightsEvaluation(keras.callbacks.Callback):
    """Evaluates with the moving-average weights, trains with the raw ones."""

    def on_test_begin(self, logs=None):
        if self.model.ema_variables:
            self.model.swap_averaged_weights()

    def on_test_end(self, logs=None):
        if self.model.ema_variables:
            self.model.swap_averaged_weights()


class EpochEnd(keras.callbacks.Callback):
    """Checkpoint, progress line, JSON record and TensorBoard scalars after every epoch."""

    def __init__(self, config, manager, epoch_var, writer, log, is_chief):
        super().__init__()
        self.config, self.manager, self.epoch_var = config, manager, epoch_var
        self.writer, self.log, self.is_chief = writer, log, is_chief
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        self.epoch_var.assign(done)
        saving = time.time()
        self.manager.save(checkpoint_number=done)
        held_out = "validation" if self.config.validation_size else "test"
        record = {named_metric(k, held_out): float(v) for k, v in (logs or {}).items()}
        # started_at (Unix time) and the checkpoint's share of `seconds` locate any time spent
        # between epochs (the next record's started_at minus this one's end).
        record.update(epoch=done, seconds=round(time.time() - self._start, 3),
                      started_at=round(self._start, 3),
                      checkpoint_seconds=round(time.time() - saving, 3))
        record["learning_rate"] = float(
            tf.keras.backend.get_value(self.model.optimizer.learning_rate)
        )
        if self.is_chief:
            run_dir.append_progress(self.config.output_dir, record)
            with self.writer.as_default(step=done):
                for k, v in record.items():
                    if k not in ("epoch", "started_at"):
                        tf.summary.scalar(k, v)
            self.writer.flush()
        fields = self.model.progress_fields()
        if held_out != "test":
            fields = [(k.replace("test_", "validation_", 1), label.replace("test", "val"))
                      for k, label in fields]
        self.log(progress_line(record, self.config.epochs, fields))
        if os.environ.get(KILL_AFTER_EPOCH_ENV) == str(done):
            os.kill(os.getpid(), signal.SIGKILL)


def named_metric(keras_name: str, held_out: str) -> str:
    """Keras logs `loss` (training) and `val_loss` (held-out): `train_loss`, `test_loss` (or
    `validation_loss` when the held-out split is a validation split)."""
    if keras_name.startswith("val_"):
        return f"{held_out}_{keras_name[4:]}"
    return f"train_{keras_name}"


def progress_line(record: dict, epochs: int, fields: list[tuple[str, str]]) -> str:
    """One line per epoch: `fields` are (record key, label) pairs; missing keys are skipped."""
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key, label in fields:
        if key in record:
            parts.append(f"{label} {_formatted(key, record[key])}")
    parts.append(f"{record['seconds']:.1f}s")
    return "  ".join(parts)


def _formatted(key: str, value: float) -> str:
    if "error" in key:
        return f"{100 * value:.2f}%"
    if key.endswith("_bits"):
        return f"{value:.1f} bits"
    if "loss" in key and "ce" not in key:
        return f"{value:.4f}"
    return f"{value:.2f}"


def evaluate(model: TrainableModel, split: Split, strategy) -> dict:
    ds = shard_by_data(make_dataset(split, EVAL_BATCH, shuffle=False))
    with strategy.scope(), model.averaged_weights():
        results = model.evaluate(ds, verbose=0, return_dict=True)
    return {k: float(v) for k, v in results.items()}


def train(
    config: TrainConfig,
    log: Callable[[str], None] = print,
    flags_text: str | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict:
    """Trains (or resumes) the run described by `config`; returns the final metrics.

    `flags_text`, the flags as given on the command line, is kept in the run's flags.txt;
    `callbacks` are passed on to `fit` after the run's own.
    """
    keras.utils.set_random_seed(config.seed)
    splits = load_splits(config.dataset, config.data_dir, config.validation_size)
    splits = {name: fit_split(split, config.model.input_shape) for name, split in splits.items()}
    model_config = config.model.with_data(splits["train"].labels)
    config = dataclasses.replace(config, model=model_config)
    strategy, is_chief = make_strategy(config.strategy)
    # Only the chief writes the run directory, so only the chief locks it.
    with run_dir.exclusive(config.output_dir) if is_chief else contextlib.nullcontext():
        return _train(config, splits, strategy, is_chief, log, flags_text, callbacks)


def _train(config: TrainConfig, splits: dict, strategy, is_chief: bool,
           log: Callable[[str], None], flags_text: str | None,
           callbacks: Sequence[keras.callbacks.Callback]) -> dict:
    model_config = config.model
    # Non-chief workers write their (identical) checkpoints to a scratch directory.
    out_dir = config.output_dir if is_chief else os.path.join(config.output_dir, ".worker")
    resuming = run_dir.prepare(config, flags_text) if is_chief else False

    steps_per_epoch = len(splits["train"]) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"batch_size={config.batch_size} exceeds the {len(splits['train'])} training examples"
        )
    with strategy.scope():
        model = build_model(model_config)
        optimizer = FusedAdam(learning_rate(config, steps_per_epoch), beta_1=config.adam_beta1,
                              epsilon=config.adam_epsilon)
        optimizer.build(model.trainable_variables)
        model.compile(optimizer=optimizer, jit_compile=config.jit_compile,
                      steps_per_execution=config.steps_per_execution)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
    manager = run_dir.checkpoint_manager(out_dir, checkpoint)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log(f"resuming from {manager.latest_checkpoint} (epoch {int(epoch_var.numpy())})")
    elif resuming:
        log("found the run's config but no checkpoint yet: starting from epoch 0")
    initial_epoch = int(epoch_var.numpy())
    if is_chief:
        run_dir.truncate_progress(config.output_dir, initial_epoch)

    started = time.time()
    if initial_epoch < config.epochs:
        writer = tf.summary.create_file_writer(os.path.join(out_dir, "tensorboard"))
        train_ds = make_dataset(
            splits["train"],
            config.batch_size,
            shuffle=True,
            seed=config.seed + initial_epoch,
            drop_remainder=True,
            repeat=True,  # one iterator for the run: no per-epoch teardown between epochs
        )
        model.fit(
            shard_by_data(train_ds),
            epochs=config.epochs,
            steps_per_epoch=steps_per_epoch,
            initial_epoch=initial_epoch,
            validation_data=shard_by_data(
                make_dataset(splits["test"], EVAL_BATCH, shuffle=False)
            ),
            callbacks=[
                AveragedWeightsEvaluation(),
                EpochEnd(config, manager, epoch_var, writer, log, is_chief),
                *callbacks,
            ],
            verbose=0,
        )
    metrics = final_metrics(model, config, splits, strategy)
    metrics["train_seconds_this_session"] = round(time.time() - started, 1)
    if is_chief:
        atomic.write_json(os.path.join(config.output_dir, run_dir.METRICS), metrics)
    return metrics


def final_metrics(model: TrainableModel, config: TrainConfig, splits: dict, strategy) -> dict:
    held_out = "validation" if "final_test" in splits else "test"
    metrics = {
        "model": config.model.model,
        "family": config.model.family,
        "dataset": config.dataset,
        "epochs": config.epochs,
        "averaged_weights": config.model.ema_decay > 0,
        held_out: evaluate(model, splits["test"], strategy),
        "train": evaluate(model, splits["train"], strategy),
    }
    if config.model.family == "classifier":
        metrics["eval_samples"] = config.model.eval_samples
    if "final_test" in splits:
        metrics["test"] = evaluate(model, splits["final_test"], strategy)
    summary = metrics["test"] if "test" in metrics else metrics[held_out]
    metrics.update(model.headline_metrics(summary))
    if held_out == "validation":  # the numbers to select on: test_* -> validation_*
        metrics.update({"validation_" + k.removeprefix("test_"): v
                        for k, v in model.headline_metrics(metrics[held_out]).items()
                        if k.startswith("test_")})
    with model.averaged_weights():
        metrics.update(evaluation.final_evaluation(model, splits.get("final_test", splits["test"])))
    return metrics


def summary_line(metrics: dict, metrics_path: str) -> str:
    """What bin/train prints at the end of a run."""
    run = f"({metrics['model']}, {metrics['dataset']}, {metrics['epochs']} epochs)"
    run += f" -> {metrics_path}"
    split, note = "test", ""
    if "validation_error" in metrics or "validation_elbo" in metrics:  # a model-selection run
        split = "validation"
        note = " (the test split's numbers are in metrics.json: do not select on them)"
    if f"{split}_error" in metrics:
        return f"{split} error: {100 * metrics[f'{split}_error']:.2f}% {run}{note}"
    return f"{split} ELBO: {metrics[f'{split}_elbo']:.2f} nats/image {run}{note}"
