"""The convolutional encoder and decoder of the VAEs (Sootla 2018, Table 3.1; Dupont 2018).

Encoder: one 4x4 stride-2 ReLU convolution per halving of the image down to 4x4 (32x32: three,
64x64: four), then Dense ReLU layers and an optional linear layer, giving the features the
latent heads read. Decoder: latents -> optional Dense ReLU -> Dense 64*4*4 ReLU -> 4x4 stride-2
transposed convolutions back to the image size; the last one outputs the Bernoulli logits
(the convolutions' bias gradients are summed in float32: see `_BroadcastBias`).

With `config.mixed_precision`, every convolution and Dense layer here computes in bfloat16
(Keras' per-layer `mixed_bfloat16` policy: float32 variables, bfloat16 arithmetic) and each
network ends with a cast back to float32, so the latent heads, the Bernoulli likelihood and the
loss read float32 tensors. Without it the networks are built exactly as before (float32).
"""

from __future__ import annotations

import tf_keras as keras

from deepvib.models.vae_config import VAEConfig

RESHAPE = (4, 4, 64)
MIXED_POLICY = "mixed_bfloat16"


class _BroadcastBias:
    """Adds the layer's bias by broadcasting instead of `tf.nn.bias_add`: the same function and
    variables (checkpoints are unchanged), another gradient op.

    `bias_add`'s gradient, `BiasAddGrad`, accumulates a bfloat16 gradient in bfloat16 and
    stalls on long sums: for the 32x32 output layer (65,536 terms per channel at batch 64) it
    returned 4 where the float32 model's gradient is 372. The broadcast's gradient is a `Sum`,
    which accumulates in float32; on CPU it is also faster (one channel: 5 vs 186 us).
    """

    def call(self, inputs):
        # The swap below lasts one (trace-time) call; a layer is never called from two threads
        # at once here (tf.distribute's mirrored replicas trace one at a time).
        if self.data_format != "channels_last":
            raise ValueError(f"{self.name}: channels_last only, got {self.data_format}")
        use_bias, activation = self.use_bias, self.activation
        self.use_bias, self.activation = False, None
        try:
            outputs = super().call(inputs)
        finally:
            self.use_bias, self.activation = use_bias, activation
        if use_bias:
            outputs = outputs + self.bias
        return outputs if activation is None else activation(outputs)


@keras.saving.register_keras_serializable("deepvib")
class Conv2D(_BroadcastBias, keras.layers.Conv2D):
    pass


@keras.saving.register_keras_serializable("deepvib")
class TransposedConv2D(_BroadcastBias, keras.layers.Conv2DTranspose):
    pass


def _compute_dtype(config: VAEConfig) -> dict:
    """The dtype keyword of the networks' layers: bfloat16 compute when mixed, else the default."""
    return {"dtype": MIXED_POLICY} if config.mixed_precision else {}


def _to_float32(config: VAEConfig, layers: list[keras.layers.Layer]) -> list[keras.layers.Layer]:
    """Mixed precision: a final cast of the network's output to float32 (nothing otherwise)."""
    if config.mixed_precision:
        layers.append(keras.layers.Activation("linear", dtype="float32", name="to_float32"))
    return layers


def encoder(config: VAEConfig) -> keras.Sequential:
    dtype = _compute_dtype(config)
    layers: list[keras.layers.Layer] = []
    for i, channels in enumerate(config.encoder_channels):
        layers.append(Conv2D(
            channels, 4, strides=2, padding="same", activation="relu", name=f"conv_{i}",
            **dtype))
    layers.append(keras.layers.Flatten(name="flatten", **dtype))
    for i, units in enumerate(config.encoder_dense):
        layers.append(keras.layers.Dense(units, activation="relu", name=f"dense_{i}", **dtype))
    if config.encoder_linear:
        layers.append(keras.layers.Dense(config.encoder_linear, name="linear", **dtype))
    return keras.Sequential(_to_float32(config, layers), name="encoder")


def decoder(config: VAEConfig) -> keras.Sequential:
    dtype = _compute_dtype(config)
    layers: list[keras.layers.Layer] = []
    if config.decoder_dense:
        layers.append(keras.layers.Dense(config.decoder_dense, activation="relu", name="dense",
                                         **dtype))
    layers += [
        keras.layers.Dense(RESHAPE[0] * RESHAPE[1] * RESHAPE[2], activation="relu",
                           name="to_features", **dtype),
        keras.layers.Reshape(RESHAPE, name="reshape", **dtype),
    ]
    for i, channels in enumerate(config.decoder_channels):
        layers.append(TransposedConv2D(
            channels, 4, strides=2, padding="same", activation="relu", name=f"upconv_{i}",
            **dtype))
    layers.append(TransposedConv2D(
        config.channels, 4, strides=2, padding="same", name="logits", **dtype))
    return keras.Sequential(_to_float32(config, layers), name="decoder")
