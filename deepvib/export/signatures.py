"""The serving functions of a trained model, gathered on a `tf.Module` for `tf.saved_model.save`.

Image inputs are `images`, float32 [batch, H, W, C] in [0, 1] (classifiers 28x28x1, MNIST VAEs
32x32x1), checked at run time: the input signature fixes dtype and rank only for Python callers
(a loaded signature and TF Serving feed the graph directly, and a [2, 28, 28] or [28, 28, 1]
batch would otherwise be reshaped into digits silently), so the graph itself asserts the shape
and the value range. A VAE's `decode` takes `codes` instead, [batch, K + sum n_i], finite.

Signatures:
- `serving_default` (every classifier): `probabilities` [batch, C], the predictive p(y|x);
  `classes` int64 [batch], its argmax; `embedding_mean` [batch, K]. For VIB the predictive is
  the mean of softmaxes over `eval_samples` posterior samples (Alemi et al. 2017, §4.1.1), or
  softmax(decoder(mu)) when `eval_samples` is 0 (deterministic, bit-reproducible serving);
  `embedding_mean` is the posterior mean. Baselines: their K-dim embedding and softmax.
- `encode` (VIB): `mean` [batch, K] and `scale`, the std [batch, K] of a diagonal posterior or
  the Cholesky factor [batch, K, K] of a full-covariance one.

- VAEs: `encode` (`continuous_mean`, `continuous_scale` [batch, K]; `discrete_probabilities`
  [batch, sum n_i], each variable's category probabilities, concatenated; JointVAE only),
  `decode` (`codes` [batch, K + sum n_i] -> `probabilities`, the Bernoulli means of the pixels)
  and `reconstruct` (`images` -> `probabilities` at the posterior mean and argmax code).

A model family adds a builder to `_BUILDERS`: a function from (model, eval_samples) to named
`Signature`s (input spec, checks, computation); `serving_function` puts each behind its input
signature and checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from deepvib.models import VAE, DeterministicClassifier, TrainableModel, VIBClassifier
from deepvib.models.heads import posterior_scale

IMAGE_SHAPE = (28, 28, 1)  # the classifiers'
IMAGES = "images"
CODES = "codes"
IMAGES_SPEC = tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32, name=IMAGES)
SERVING_DEFAULT = "serving_default"
ENCODE = "encode"
DECODE = "decode"
RECONSTRUCT = "reconstruct"

Computation = Callable[[tf.Tensor], dict[str, tf.Tensor]]  # checked input -> named outputs


def images_spec(shape: tuple[int, ...]) -> tf.TensorSpec:
    return tf.TensorSpec([None, *shape], tf.float32, name=IMAGES)


def checked_images(images: tf.Tensor, shape: tuple[int, ...] = IMAGE_SHAPE) -> tf.Tensor:
    """`images` once the graph has asserted shape [batch, *shape] and values in [0, 1]."""
    dims = "_".join(map(str, shape))
    images = tf.ensure_shape(images, [None, *shape], name=f"images_shape_is_batch_{dims}")
    in_range = tf.reduce_all((images >= 0.0) & (images <= 1.0))  # NaN fails too
    check = tf.debugging.Assert(
        in_range,
        ["images must be float32 in [0, 1] (uint8 pixels / 255); got min",
         tf.reduce_min(images), "max", tf.reduce_max(images)],
        name="images_in_unit_interval",
    )
    with tf.control_dependencies([check]):
        return tf.identity(images)


def checked_codes(codes: tf.Tensor, dim: int) -> tf.Tensor:
    """`codes` once the graph has asserted shape [batch, dim] and finite values."""
    codes = tf.ensure_shape(codes, [None, dim], name=f"codes_shape_is_batch_{dim}")
    check = tf.debugging.Assert(
        tf.reduce_all(tf.math.is_finite(codes)), ["codes must be finite"], name="codes_finite")
    with tf.control_dependencies([check]):
        return tf.identity(codes)


@dataclasses.dataclass(frozen=True)
class Signature:
    """One serving function: its input spec, the graph checks of that input, the computation."""

    spec: tf.TensorSpec
    check: Callable[[tf.Tensor], tf.Tensor]
    compute: Computation


def image_signature(compute: Computation, shape: tuple[int, ...] = IMAGE_SHAPE) -> Signature:
    return Signature(images_spec(shape), lambda x: checked_images(x, shape), compute)


Builder = Callable[[TrainableModel, int], dict[str, Signature]]


def classification_outputs(log_probs: tf.Tensor, embedding: tf.Tensor) -> dict[str, tf.Tensor]:
    return {
        "probabilities": tf.exp(log_probs),
        "classes": tf.argmax(log_probs, axis=-1, output_type=tf.int64),
        "embedding_mean": embedding,
    }


def vib_computations(model: VIBClassifier, eval_samples: int) -> dict[str, Signature]:
    def serve(images):
        posterior = model.posterior(images)
        log_probs = model.predictive_log_probs_from_posterior(posterior, eval_samples)
        return classification_outputs(log_probs, posterior.mean())

    def encode(images):
        posterior = model.posterior(images)
        return {"mean": posterior.mean(), "scale": posterior_scale(posterior)}

    return {SERVING_DEFAULT: image_signature(serve), ENCODE: image_signature(encode)}


def deterministic_computations(
    model: DeterministicClassifier, eval_samples: int
) -> dict[str, Signature]:
    del eval_samples  # one forward pass is the predictive

    def serve(images):
        embedding = model.embed(images)
        return classification_outputs(tf.nn.log_softmax(model.decoder(embedding)), embedding)

    return {SERVING_DEFAULT: image_signature(serve)}


def vae_computations(model: VAE, eval_samples: int) -> dict[str, Signature]:
    del eval_samples  # encode, decode and reconstruct are deterministic
    shape = model.config.input_shape

    def encode(images):
        z_posterior, c_posteriors = model.posteriors(images)
        outputs = {"continuous_mean": z_posterior.mean(),
                   "continuous_scale": posterior_scale(z_posterior)}
        if c_posteriors:
            outputs["discrete_probabilities"] = tf.concat(
                model.discrete_probabilities(images), axis=-1)
        return outputs

    def decode(codes):
        return {"probabilities": model.decode(codes)}

    def reconstruct(images):
        return {"probabilities": model.reconstruct(images)}

    codes_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name=CODES)
    return {
        ENCODE: image_signature(encode, shape),
        DECODE: Signature(codes_spec, lambda c: checked_codes(c, model.latent_dim), decode),
        RECONSTRUCT: image_signature(reconstruct, shape),
    }


_BUILDERS: dict[type, Builder] = {
    VIBClassifier: vib_computations,
    DeterministicClassifier: deterministic_computations,
    VAE: vae_computations,
}


def serving_function(
    name: str, signature: Signature, jit_compile: bool = False
) -> tf.types.experimental.PolymorphicFunction:
    """`signature.compute` behind its input signature and its checks.

    With `jit_compile`, the computation runs as one XLA cluster; the checks stay outside it
    (XLA drops Assert). TF Serving runs such a model only when started with
    `--xla_cpu_compilation_enabled=true`.
    """
    compute = signature.compute
    inner = tf.function(compute, jit_compile=True) if jit_compile else compute

    def call(inputs):
        return inner(signature.check(inputs))

    call.__name__ = name
    return tf.function(call, input_signature=[signature.spec])


class _Untracked:
    """Keeps the Keras model out of the SavedModel's object graph (see `ServingModule`)."""

    def __init__(self, model: TrainableModel):
        self.model = model


class ServingModule(tf.Module):
    """The exported object: the Keras model, its serving functions, the variables they read.

    The model is held but not tracked: tf_keras would serialise its own Keras call traces,
    which fail on the TFP distribution layers (their traced output is a tensor, not a
    distribution). What the SavedModel needs is the functions and exactly the variables they
    capture (the moving-average weights when `load_model` swapped them in), tracked here.
    """

    def __init__(self, model: TrainableModel, eval_samples: int, jit_compile: bool = False):
        super().__init__(name="deepvib_serving")
        computations = _builder_for(model)(model, eval_samples)
        self._keras = _Untracked(model)
        self.eval_samples = eval_samples
        self.functions = {
            name: serving_function(name, signature, jit_compile)
            for name, signature in computations.items()
        }
        self.serving_variables = captured_variables(self.functions.values())

    @property
    def model(self) -> TrainableModel:
        return self._keras.model

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        return {name: fn.get_concrete_function() for name, fn in self.functions.items()}


def _builder_for(model: TrainableModel) -> Builder:
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
