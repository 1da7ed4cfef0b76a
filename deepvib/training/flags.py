"""The flags of `bin/train` (defined once, here) and their conversion to a TrainConfig."""

from __future__ import annotations

from absl import flags

from deepvib.data import DATASETS
from deepvib.models import (
    ALL_MODELS,
    COVARIANCES,
    INPUT_SCALINGS,
    KL_ESTIMATORS,
    VAE_MODELS,
    ModelConfig,
    VAEConfig,
)
from deepvib.training.config import STRATEGIES, TrainConfig

FLAGS = flags.FLAGS


def define_flags() -> None:
    # What to train.
    flags.DEFINE_enum("model", "vib", ALL_MODELS,
                      "Model and objective: a classifier (vib and its baselines) or a VAE "
                      "(vae, beta_vae, capacity_vae, jointvae).")
    flags.DEFINE_float("beta", 1e-3, "VIB: weight of KL[p(z|x) || r(z)] (eq. 17).")
    flags.DEFINE_integer("bottleneck_dim", 256, "K, the dimension of z.")
    flags.DEFINE_enum("covariance", "diag", COVARIANCES, "VIB: posterior covariance.")
    flags.DEFINE_integer("eval_samples", 12, "VIB: posterior samples S of the predictive.")
    flags.DEFINE_integer("train_samples", 1,
                         "VIB: z samples per example in training (the CE is their mean).")
    flags.DEFINE_enum("kl_estimator", "analytic", KL_ESTIMATORS,
                      "VIB training: the KL term analytic, or sampled as log p(z|x) - log r(z) at "
                      "the training samples of z (the authors' JAX remake).")
    flags.DEFINE_list("hidden_units", ["1024", "1024"], "Encoder MLP hidden layer sizes.")
    flags.DEFINE_enum("input_scaling", "symmetric", INPUT_SCALINGS,
                      "How [0,1] images enter the MLP: as is (unit) or as 2x-1 (symmetric).")
    flags.DEFINE_float("dropout_rate", 0.5, "--model=dropout: dropout rate on hidden layers.")
    flags.DEFINE_float("confidence_penalty", 0.1,
                       "--model=confidence_penalty: beta of eq. 4 (Pereyra et al.).")
    flags.DEFINE_float("label_smoothing", 0.1, "--model=label_smoothing: epsilon.")
    # VAEs (Sootla 2018 eq. 2.11-2.14, Table 3.1; Dupont 2018).
    flags.DEFINE_integer("image_size", 32, "VAE: images enter at this size (MNIST resized).")
    flags.DEFINE_integer("continuous_dim", 10, "VAE: K, the dimension of the Gaussian z.")
    flags.DEFINE_list("discrete_dims", ["10"],
                      "jointvae: the sizes of the categorical latents (one each).")
    flags.DEFINE_float("temperature", 0.67, "jointvae: temperature of the relaxed one-hot.")
    flags.DEFINE_float("vae_beta", 4.0, "beta_vae: beta of eq. 2.11 (vae is beta = 1).")
    flags.DEFINE_list("capacity_z", ["0", "5"], "capacity_vae/jointvae: C_z from,to (nats).")
    flags.DEFINE_integer("capacity_z_iterations", 25000, "Steps over which C_z rises.")
    flags.DEFINE_float("gamma_z", 30.0, "capacity_vae/jointvae: gamma of the z term.")
    flags.DEFINE_list("capacity_c", ["0", "5"],
                      "jointvae: C_c from,to (nats; capped at sum of log n_i).")
    flags.DEFINE_integer("capacity_c_iterations", 25000, "Steps over which C_c rises.")
    flags.DEFINE_float("gamma_c", 30.0, "jointvae: gamma of the c term.")
    flags.DEFINE_float("weight_decay", 0.0, "VAE: L2 coefficient on every kernel.")
    flags.DEFINE_list("encoder_channels", ["32", "32", "64"],
                      "VAE: channels of the 4x4 stride-2 encoder convolutions.")
    flags.DEFINE_list("encoder_dense", ["128"], "VAE: ReLU dense layers after the convs.")
    flags.DEFINE_integer("encoder_linear", 128,
                         "VAE: units of a linear layer before the latent heads (0: none).")
    flags.DEFINE_integer("decoder_dense", 128, "VAE: ReLU dense layer on the latents (0: none).")
    flags.DEFINE_list("decoder_channels", ["64", "32"],
                      "VAE: transposed convolutions before the output one.")
    flags.DEFINE_integer("iwae_samples", 100,
                         "VAE: importance samples of the final test log p(x) bound.")
    flags.DEFINE_boolean("mixed_precision", False,
                         "VAE: bfloat16 convolutions and Dense layers (float32 variables); the "
                         "latent heads, likelihood, KL terms and loss stay float32.")
    # Data.
    flags.DEFINE_enum("dataset", "mnist_5k", DATASETS,
                      "mnist (TFDS or --data_dir), mnist_5k (embedded, offline) or celeb_a "
                      "(a prepared TFDS copy).")
    flags.DEFINE_string("data_dir", None,
                        "mnist: directory with the MNIST IDX files (plain or .gz); celeb_a: "
                        "the TFDS data directory.")
    flags.DEFINE_integer("validation_size", 0,
                         "Hold out the last N training examples and evaluate on them.")
    # Optimisation.
    flags.DEFINE_integer("epochs", 200, "Epochs (a resumed run trains up to this many).")
    flags.DEFINE_integer("batch_size", 100, "Global batch size.")
    flags.DEFINE_float("learning_rate", 1e-4, "Adam learning rate.")
    flags.DEFINE_float("adam_beta1", 0.5, "Adam beta1.")
    flags.DEFINE_float("adam_epsilon", 1e-7,
                       "Adam epsilon, added to sqrt(v) before the bias correction (Keras' form; "
                       "it equals the paper's epsilon once the correction has decayed).")
    flags.DEFINE_float("lr_decay_rate", 0.97, "Staircase decay factor (1 = constant).")
    flags.DEFINE_float("lr_decay_epochs", 2.0, "Epochs between learning-rate decays.")
    flags.DEFINE_float("ema_decay", 0.999,
                       "Moving average of the weights used for evaluation (0 = off).")
    flags.DEFINE_boolean("jit_compile", True, "Compile the train step with XLA.")
    flags.DEFINE_integer("steps_per_execution", 1,
                         "Training steps per call of the compiled train function (one graph "
                         "loop; saves the per-step Python round trip; same objective).")
    flags.DEFINE_enum("strategy", "default", STRATEGIES, "tf.distribute strategy.")
    flags.DEFINE_integer("seed", 0, "Random seed (weights, sampling, shuffling).")
    flags.DEFINE_string("output_dir", None, "Run directory (checkpoints, metrics, logs).")


def config_from_flags() -> TrainConfig:
    model = FLAGS.model
    if FLAGS.mixed_precision and model not in VAE_MODELS:
        raise ValueError(f"--mixed_precision is for the VAE models ({', '.join(VAE_MODELS)}), "
                         f"not --model={model}")
    model_config = vae_config() if model in VAE_MODELS else classifier_config()
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
        adam_epsilon=FLAGS.adam_epsilon,
        lr_decay_rate=FLAGS.lr_decay_rate,
        lr_decay_epochs=FLAGS.lr_decay_epochs,
        seed=FLAGS.seed,
        jit_compile=FLAGS.jit_compile,
        steps_per_execution=FLAGS.steps_per_execution,
        strategy=FLAGS.strategy,
    )


def classifier_config() -> ModelConfig:
    model = FLAGS.model
    return ModelConfig(
        model=model,
        bottleneck_dim=FLAGS.bottleneck_dim,
        covariance=FLAGS.covariance,
        beta=FLAGS.beta if model == "vib" else 0.0,
        eval_samples=FLAGS.eval_samples if model == "vib" else 1,
        train_samples=FLAGS.train_samples if model == "vib" else 1,
        kl_estimator=FLAGS.kl_estimator if model == "vib" else "analytic",
        hidden_units=tuple(_ints("hidden_units")),
        input_scaling=FLAGS.input_scaling,
        dropout_rate=FLAGS.dropout_rate if model == "dropout" else 0.0,
        confidence_penalty=FLAGS.confidence_penalty if model == "confidence_penalty" else 0.0,
        label_smoothing=FLAGS.label_smoothing if model == "label_smoothing" else 0.0,
        ema_decay=FLAGS.ema_decay,
    )


def vae_config() -> VAEConfig:
    model = FLAGS.model
    channels = 3 if FLAGS.dataset == "celeb_a" else 1
    return VAEConfig(
        model=model,
        image_size=FLAGS.image_size,
        channels=channels,
        continuous_dim=FLAGS.continuous_dim,
        discrete_dims=tuple(_ints("discrete_dims")) if model == "jointvae" else (),
        temperature=FLAGS.temperature,
        beta=FLAGS.vae_beta if model == "beta_vae" else 1.0,
        capacity_z=tuple(_floats("capacity_z")),
        capacity_z_iterations=FLAGS.capacity_z_iterations,
        gamma_z=FLAGS.gamma_z,
        capacity_c=tuple(_floats("capacity_c")),
        capacity_c_iterations=FLAGS.capacity_c_iterations,
        gamma_c=FLAGS.gamma_c,
        weight_decay=FLAGS.weight_decay,
        encoder_channels=tuple(_ints("encoder_channels")),
        encoder_dense=tuple(_ints("encoder_dense")),
        encoder_linear=FLAGS.encoder_linear,
        decoder_dense=FLAGS.decoder_dense,
        decoder_channels=tuple(_ints("decoder_channels")),
        iwae_samples=FLAGS.iwae_samples,
        ema_decay=FLAGS.ema_decay,
        mixed_precision=FLAGS.mixed_precision,
    )


def _ints(name: str) -> list[int]:
    values = FLAGS[name].value
    try:
        return [int(v) for v in values]
    except ValueError as e:
        raise ValueError(f"--{name} must be integers, got {','.join(values)}") from e


def _floats(name: str) -> list[float]:
    values = FLAGS[name].value
    try:
        parsed = [float(v) for v in values]
    except ValueError as e:
        raise ValueError(f"--{name} must be numbers, got {','.join(values)}") from e
    if len(parsed) != 2:
        raise ValueError(f"--{name} takes two numbers, from,to; got {','.join(values)}")
    return parsed


def flags_text() -> str:
    """The training flags as given (on the command line or in a flagfile), one `--name=value`
    per line: a valid flagfile. Flags left at their defaults are not listed."""
    lines = [f.serialize() for f in FLAGS.get_flags_for_module(__name__) if f.present]
    return "\n".join(line for line in lines if line) + "\n"
