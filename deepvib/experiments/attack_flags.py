"""The flags of `bin/attack` (the robustness experiment of Alemi et al. 2017, section 4.2) and
their conversion to an `AttackConfig`. absl only: no TensorFlow is loaded to parse them.
"""

from __future__ import annotations

import os

from absl import flags

from deepvib.experiments.attack_config import ATTACKS, AttackConfig

FLAGS = flags.FLAGS


def define_flags() -> None:
    # What to attack and where the results go.
    flags.DEFINE_list("model_dirs", None,
                      "Comma-separated run directories (the --output_dir of bin/train).")
    flags.DEFINE_string("output_dir", None,
                        "Experiment directory: results go to <output_dir>/<run name>/"
                        "attack.json and adversarial.npz, <run name> being the base name of "
                        "the run directory. An existing attack.json with the same parameters "
                        "is kept (the model is skipped), so an interrupted sweep resumes.")
    flags.DEFINE_boolean("overwrite", False,
                         "Redo and replace existing results (needed when parameters differ).")
    flags.DEFINE_string("attack", "cw_l2", f"One of {', '.join(ATTACKS)}.")
    flags.DEFINE_boolean("targeted", False,
                         "Targeted attack: a seeded random target != label (or --target_class).")
    flags.DEFINE_integer("num_images", 1000, "Attack the first N test images (paper: 1000).")
    flags.DEFINE_integer("source_class", None,
                         "Attack only the first --num_images test images of this class "
                         "(Figure 3: 0).")
    flags.DEFINE_integer("target_class", None,
                         "With --targeted: this target for every image (Figure 3: 1).")
    flags.DEFINE_integer("seed", 0, "Seed of the random targets and of VIB sampling.")
    flags.DEFINE_integer("attack_samples", 12,
                         "VIB: posterior samples of the attacked predictive (log of the mean "
                         "softmax; paper: 12); 0 = mean mode (z = mu). Ignored by baselines.")
    flags.DEFINE_string("dataset", None,
                        "mnist or mnist_5k; default: the dataset each run was trained on.")
    flags.DEFINE_string("data_dir", None,
                        "MNIST IDX directory; default: the run's own --data_dir.")
    # Carlini & Wagner L2 (defaults: C&W's reference parameters, as in the paper).
    flags.DEFINE_integer("binary_search_steps", 9, "CW: binary-search steps over c.")
    flags.DEFINE_integer("max_iterations", 10_000, "CW: Adam iterations per search step.")
    flags.DEFINE_float("learning_rate", 1e-2, "CW: Adam learning rate.")
    flags.DEFINE_float("initial_const", 1e-3, "CW: initial constant c.")
    flags.DEFINE_float("confidence", 0.0, "CW: confidence margin kappa.")
    flags.DEFINE_boolean("abort_early", True, "CW: stop an example once its loss stalls.")
    flags.DEFINE_integer("cw_batch_size", 100, "CW: images optimised together.")
    flags.DEFINE_integer("success_samples", 0,
                         "CW, sampling VIB: judge the search's success on an independent "
                         "predictive with this many fresh posterior samples, so a point that "
                         "fooled one lucky draw is not kept (0: on the attacked scores, as "
                         "C&W).")
    # FGSM / PGD.
    flags.DEFINE_float("eps", 0.3, "FGSM/PGD: perturbation budget.")
    flags.DEFINE_float("eps_iter", 0.01, "PGD: step size.")
    flags.DEFINE_integer("nb_iter", 40, "PGD: iterations.")
    flags.DEFINE_string("norm", "inf", "FGSM: inf, 1 or 2; PGD: inf or 2.")
    flags.DEFINE_boolean("rand_init", True, "PGD: start at a random point of the eps-ball.")


def config_from_flags() -> AttackConfig:
    return AttackConfig(
        attack=FLAGS.attack, targeted=FLAGS.targeted, num_images=FLAGS.num_images,
        source_class=FLAGS.source_class, target_class=FLAGS.target_class, seed=FLAGS.seed,
        attack_samples=FLAGS.attack_samples, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
        binary_search_steps=FLAGS.binary_search_steps, max_iterations=FLAGS.max_iterations,
        learning_rate=FLAGS.learning_rate, initial_const=FLAGS.initial_const,
        confidence=FLAGS.confidence, abort_early=FLAGS.abort_early,
        cw_batch_size=FLAGS.cw_batch_size, success_samples=FLAGS.success_samples,
        eps=FLAGS.eps, eps_iter=FLAGS.eps_iter,
        nb_iter=FLAGS.nb_iter, norm=FLAGS.norm, rand_init=FLAGS.rand_init,
    )


def model_dirs_from_flags() -> list[str]:
    """--model_dirs, each checked to be a run directory (config.json present)."""
    dirs = [d for d in (FLAGS.model_dirs or []) if d]
    if not dirs:
        raise ValueError("--model_dirs is required: comma-separated bin/train run directories")
    for d in dirs:
        if not os.path.isdir(d):
            raise FileNotFoundError(f"--model_dirs: {d} does not exist or is not a directory")
        if not os.path.isfile(os.path.join(d, "config.json")):
            raise FileNotFoundError(f"--model_dirs: {d} is not a bin/train run directory "
                                    "(config.json missing)")
    return dirs


def output_dir_from_flags() -> str:
    if not FLAGS.output_dir:
        raise ValueError("--output_dir is required (results go to <output_dir>/<run name>/)")
    return FLAGS.output_dir
