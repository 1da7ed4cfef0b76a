"""The flags of `bin/train` (defined once, here) and their conversion to a TrainConfig."""

from __future__ import annotations

from absl import flags

from deepvib.data import DATASETS
from deepvib.models import COVARIANCES, INPUT_SCALINGS, MODELS, ModelConfig
from deepvib.training.config import STRATEGIES, TrainConfig

FLAGS = flags.FLAGS


def define_flags() -> None:
    # What to train.
    flags.DEFINE_enum("model", "vib", MODELS, "Classifier and objective.")
    flags.DEFINE_float("beta", 1e-3, "VIB: weight of KL[p(z|x) || r(z)] (eq. 17).")
    flags.DEFINE_integer("bottleneck_dim", 256, "K, the dimension of z.")
    flags.DEFINE_enum("covariance", "diag", COVARIANCES, "VIB: posterior covariance.")
    flags.DEFINE_integer("eval_samples", 12, "VIB: posterior samples S of the predictive.")
    flags.DEFINE_list("hidden_units", ["1024", "1024"], "Encoder MLP hidden layer sizes.")
    flags.DEFINE_enum("input_scaling", "symmetric", INPUT_SCALINGS,
                      "How [0,1] images enter the MLP: as is (unit) or as 2x-1 (symmetric).")
    flags.DEFINE_float("dropout_rate", 0.5, "--model=dropout: dropout rate on hidden layers.")
    flags.DEFINE_float("confidence_penalty", 0.1,
                       "--model=confidence_penalty: beta of eq. 4 (Pereyra et al.).")
    flags.DEFINE_float("label_smoothing", 0.1, "--model=label_smoothing: epsilon.")
    # Data.
    flags.DEFINE_enum("dataset", "mnist_5k", DATASETS,
                      "mnist (TFDS or --data_dir) or mnist_5k (embedded, offline).")
    flags.DEFINE_string("data_dir", None, "Directory with the MNIST IDX files (plain or .gz).")
    flags.DEFINE_integer("validation_size", 0,
                         "Hold out the last N training examples and evaluate on them.")
    # Optimisation.
    flags.DEFINE_integer("epochs", 200, "Epochs (a resumed run trains up to this many).")
    flags.DEFINE_integer("batch_size", 100, "Global batch size.")
    flags.DEFINE_float("learning_rate", 1e-4, "Adam learning rate.")
    flags.DEFINE_float("adam_beta1", 0.5, "Adam beta1.")
    flags.DEFINE_float("lr_decay_rate", 0.97, "Staircase decay factor (1 = constant).")
    flags.DEFINE_float("lr_decay_epochs", 2.0, "Epochs between learning-rate decays.")
    flags.DEFINE_float("ema_decay", 0.999,
                       "Moving average of the weights used for evaluation (0 = off).")
    flags.DEFINE_boolean("jit_compile", True, "Compile the train step with XLA.")
    flags.DEFINE_enum("strategy", "default", STRATEGIES, "tf.distribute strategy.")
    flags.DEFINE_integer("seed", 0, "Random seed (weights, sampling, shuffling).")
    flags.DEFINE_string("output_dir", None, "Run directory (checkpoints, metrics, logs).")


def config_from_flags() -> TrainConfig:
    model = FLAGS.model
    model_config = ModelConfig(
        model=model,
        bottleneck_dim=FLAGS.bottleneck_dim,
        covariance=FLAGS.covariance,
        beta=FLAGS.beta if model == "vib" else 0.0,
        eval_samples=FLAGS.eval_samples if model == "vib" else 1,
        hidden_units=tuple(_positive_ints(FLAGS.hidden_units)),
        input_scaling=FLAGS.input_scaling,
        dropout_rate=FLAGS.dropout_rate if model == "dropout" else 0.0,
        confidence_penalty=FLAGS.confidence_penalty if model == "confidence_penalty" else 0.0,
        label_smoothing=FLAGS.label_smoothing if model == "label_smoothing" else 0.0,
        ema_decay=FLAGS.ema_decay,
    )
    return TrainConfig(
        model=model_config,
        output_dir=FLAGS.output_dir or "",
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        validation_size=FLAGS.validation_size,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        adam_beta1=FLAGS.adam_beta1,
        lr_decay_rate=FLAGS.lr_decay_rate,
        lr_decay_epochs=FLAGS.lr_decay_epochs,
        seed=FLAGS.seed,
        jit_compile=FLAGS.jit_compile,
        strategy=FLAGS.strategy,
    )


def _positive_ints(values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError as e:
        raise ValueError(f"--hidden_units must be integers, got {values}") from e


def flags_text() -> str:
    """The values of the training flags, one `--name=value` per line (a valid flagfile)."""
    lines = [f.serialize() for f in FLAGS.get_flags_for_module(__name__)]
    return "\n".join(line for line in lines if line) + "\n"
