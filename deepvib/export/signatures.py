"""The serving functions of a trained model, gathered on a `tf.Module` for `tf.saved_model.save`.

Every function takes `images`, float32 [batch, 28, 28, 1] in [0, 1], and checks that at run
time: the input signature fixes dtype and rank only for Python callers (a loaded signature and
TF Serving feed the graph directly, and a [2, 28, 28] or [28, 28, 1] batch would otherwise be
reshaped into digits silently), so the graph itself asserts the shape and the value range.

Signatures:
- `serving_default` (every classifier): `probabilities` [batch, C], the predictive p(y|x);
  `classes` int64 [batch], its argmax; `embedding_mean` [batch, K]. For VIB the predictive is
  the mean of softmaxes over `eval_samples` posterior samples (Alemi et al. 2017, §4.1.1), or
  softmax(decoder(mu)) when `eval_samples` is 0 (deterministic, bit-reproducible serving);
  `embedding_mean` is the posterior mean. Baselines: their K-dim embedding and softmax.
- `encode` (VIB): `mean` [batch, K] and `scale`, the std [batch, K] of a diagonal posterior or
  the Cholesky factor [batch, K, K] of a full-covariance one.

A new model family (e.g. a VAE with `encode` / `decode` / `reconstruct`) adds a builder to
`_BUILDERS`: a function from (model, eval_samples) to named computations (checked images ->
dict of outputs); `serving_function` puts each behind the input signature and the checks. (A
`decode` taking z instead of images would pass its own TensorSpec.)
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from deepvib.models import Classifier, DeterministicClassifier, VIBClassifier
from deepvib.models.heads import posterior_scale

IMAGE_SHAPE = (28, 28, 1)
IMAGES = "images"
IMAGES_SPEC = tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32, name=IMAGES)
SERVING_DEFAULT = "serving_default"
ENCODE = "encode"

Computation = Callable[[tf.Tensor], dict[str, tf.Tensor]]  # checked images -> named outputs
Builder = Callable[[Classifier, int], dict[str, Computation]]


def checked_images(images: tf.Tensor) -> tf.Tensor:
    """`images` once the graph has asserted shape [batch, 28, 28, 1] and values in [0, 1]."""
    images = tf.ensure_shape(images, [None, *IMAGE_SHAPE], name="images_shape_is_batch_28_28_1")
    in_range = tf.reduce_all((images >= 0.0) & (images <= 1.0))  # NaN fails too
    check = tf.debugging.Assert(
        in_range,
        ["images must be float32 in [0, 1] (uint8 pixels / 255); got min",
         tf.reduce_min(images), "max", tf.reduce_max(images)],
        name="images_in_unit_interval",
    )
    with tf.control_dependencies([check]):
        return tf.identity(images)


def classification_outputs(log_probs: tf.Tensor, embedding: tf.Tensor) -> dict[str, tf.Tensor]:
    return {
        "probabilities": tf.exp(log_probs),
        "classes": tf.argmax(log_probs, axis=-1, output_type=tf.int64),
        "embedding_mean": embedding,
    }


def vib_computations(model: VIBClassifier, eval_samples: int) -> dict[str, Computation]:
    def serve(images):
        posterior = model.posterior(images)
        log_probs = model.predictive_log_probs_from_posterior(posterior, eval_samples)
        return classification_outputs(log_probs, posterior.mean())

    def encode(images):
        posterior = model.posterior(images)
        return {"mean": posterior.mean(), "scale": posterior_scale(posterior)}

    return {SERVING_DEFAULT: serve, ENCODE: encode}


def deterministic_computations(
    model: DeterministicClassifier, eval_samples: int
) -> dict[str, Computation]:
    del eval_samples  # one forward pass is the predictive

    def serve(images):
        embedding = model.embed(images)
        return classification_outputs(tf.nn.log_softmax(model.decoder(embedding)), embedding)

    return {SERVING_DEFAULT: serve}


_BUILDERS: dict[type, Builder] = {
    VIBClassifier: vib_computations,
    DeterministicClassifier: deterministic_computations,
}


def serving_function(
    name: str, compute: Computation, jit_compile: bool = False
) -> tf.types.experimental.PolymorphicFunction:
    """`compute` behind the input signature and the checks of `checked_images`.

    With `jit_compile`, `compute` runs as one XLA cluster; the checks stay outside it (XLA
    drops Assert). TF Serving runs such a model only when started with
    `--xla_cpu_compilation_enabled=true`.
    """
    inner = tf.function(compute, jit_compile=True) if jit_compile else compute

    def call(images):
        return inner(checked_images(images))

    call.__name__ = name
    return tf.function(call, input_signature=[IMAGES_SPEC])


class _Untracked:
    """Keeps the Keras model out of the SavedModel's object graph (see `ServingModule`)."""

    def __init__(self, model: Classifier):
        self.model = model


class ServingModule(tf.Module):
    """The exported object: the Keras model, its serving functions, the variables they read.

    The model is held but not tracked: tf_keras would serialise its own Keras call traces,
    which fail on the TFP distribution layers (their traced output is a tensor, not a
    distribution). What the SavedModel needs is the functions and exactly the variables they
    capture (the moving-average weights when `load_model` swapped them in), tracked here.
    """

    def __init__(self, model: Classifier, eval_samples: int, jit_compile: bool = False):
        super().__init__(name="deepvib_serving")
        computations = _builder_for(model)(model, eval_samples)
        self._keras = _Untracked(model)
        self.eval_samples = eval_samples
        self.functions = {
            name: serving_function(name, compute, jit_compile)
            for name, compute in computations.items()
        }
        self.serving_variables = captured_variables(self.functions.values())

    @property
    def model(self) -> Classifier:
        return self._keras.model

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        return {name: fn.get_concrete_function() for name, fn in self.functions.items()}


def _builder_for(model: Classifier) -> Builder:
    for cls, builder in _BUILDERS.items():
        if isinstance(model, cls):
            return builder
    raise ValueError(f"no serving signatures for {type(model).__name__} models")


def captured_variables(functions) -> list[tf.Variable]:
    """The variables the traced functions read, each once, in a stable order."""
    seen: dict = {}
    for fn in functions:
        for v in fn.get_concrete_function().variables:
            seen.setdefault(v.ref(), v)
    return list(seen.values())
