"""The flags of `bin/export` and their conversion to ExportOptions (no TensorFlow import)."""

from __future__ import annotations

from absl import flags

from deepvib.export.options import ExportOptions

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("model_dir", None, "Training run directory (bin/train --output_dir).")
    flags.DEFINE_string("export_dir", None,
                        "Model base directory; the export goes to <export_dir>/<name>/<version>.")
    flags.DEFINE_integer("version", None,
                         "Version to write (>= 1); default one more than the largest existing.")
    flags.DEFINE_integer("eval_samples", None,
                         "VIB: posterior samples S of the served predictive; default the run's "
                         "eval_samples; 0 serves z = posterior mean (deterministic).")
    flags.DEFINE_string("model_name", None,
                        "TF Serving model name; default the run directory's basename.")
    flags.DEFINE_boolean("warmup", True,
                         "Write assets.extra/tf_serving_warmup_requests "
                         "(needs tensorflow-serving-api).")
    flags.DEFINE_boolean("jit_compile", False,
                         "Compile the served functions with XLA. TF Serving runs such a model "
                         "only with --xla_cpu_compilation_enabled=true, and XLA compiles once "
                         "per batch size; see docs/serving.md.")


def options_from_flags() -> ExportOptions:
    return ExportOptions(
        model_dir=FLAGS.model_dir or "",
        export_dir=FLAGS.export_dir or "",
        version=FLAGS.version,
        eval_samples=FLAGS.eval_samples,
        model_name=FLAGS.model_name,
        warmup=FLAGS.warmup,
        jit_compile=FLAGS.jit_compile,
    )
