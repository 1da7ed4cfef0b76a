"""The convolutional encoder and decoder of the VAEs (Sootla 2018, Table 3.1; Dupont 2018).

Encoder: one 4x4 stride-2 ReLU convolution per halving of the image down to 4x4 (32x32: three,
64x64: four), then Dense ReLU layers and an optional linear layer, giving the features the
latent heads read. Decoder: latents -> optional Dense ReLU -> Dense 64*4*4 ReLU -> 4x4 stride-2
transposed convolutions back to the image size; the last one outputs the Bernoulli logits.
"""

from __future__ import annotations

import tf_keras as keras

from deepvib.models.vae_config import VAEConfig

RESHAPE = (4, 4, 64)


def encoder(config: VAEConfig) -> keras.Sequential:
    layers: list[keras.layers.Layer] = []
    for i, channels in enumerate(config.encoder_channels):
        layers.append(keras.layers.Conv2D(
            channels, 4, strides=2, padding="same", activation="relu", name=f"conv_{i}"))
    layers.append(keras.layers.Flatten(name="flatten"))
    for i, units in enumerate(config.encoder_dense):
        layers.append(keras.layers.Dense(units, activation="relu", name=f"dense_{i}"))
    if config.encoder_linear:
        layers.append(keras.layers.Dense(config.encoder_linear, name="linear"))
    return keras.Sequential(layers, name="encoder")


def decoder(config: VAEConfig) -> keras.Sequential:
    layers: list[keras.layers.Layer] = []
    if config.decoder_dense:
        layers.append(keras.layers.Dense(config.decoder_dense, activation="relu", name="dense"))
    layers += [
        keras.layers.Dense(RESHAPE[0] * RESHAPE[1] * RESHAPE[2], activation="relu",
                           name="to_features"),
        keras.layers.Reshape(RESHAPE, name="reshape"),
    ]
    for i, channels in enumerate(config.decoder_channels):
        layers.append(keras.layers.Conv2DTranspose(
            channels, 4, strides=2, padding="same", activation="relu", name=f"upconv_{i}"))
    layers.append(keras.layers.Conv2DTranspose(
        config.channels, 4, strides=2, padding="same", name="logits"))
    return keras.Sequential(layers, name="decoder")
