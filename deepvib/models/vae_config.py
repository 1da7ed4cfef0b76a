"""The hyperparameters that define a VAE (Sootla 2018 §2.2-2.4, Table 3.1; Dupont 2018).

Four objectives share one model:
- `vae`: the plain ELBO (eq. 2.11 with beta = 1), the thesis's "entangled" model;
- `beta_vae`: eq. 2.11 with beta > 1;
- `capacity_vae`: eq. 2.13, gamma * |KL - C(t)|, continuous latents only;
- `jointvae`: eq. 2.14, continuous and relaxed one-hot categorical latents, one capacity each.

Architecture defaults follow the thesis's Table 3.1 (encoder convs 32/32/64, dense 128 ReLU
then 128 linear; decoder dense 128, transposed convs 64/32/out); Dupont's reference code uses
convs 32/64/64, one dense layer of 256 and transposed convs 32/32/out (`--encoder_channels=32,64,64
--encoder_dense=256 --encoder_linear=0 --decoder_dense=256 --decoder_channels=32,32`).

`mixed_precision` (default off) runs the encoder's and decoder's convolutions and Dense layers in
bfloat16 with float32 variables (see `deepvib.models.conv_nets`); the latent heads, the
likelihood, the KL terms and the loss stay float32.
"""

from __future__ import annotations

import dataclasses
import math

VAE_MODELS = ("vae", "beta_vae", "capacity_vae", "jointvae")
CAPACITY_MODELS = ("capacity_vae", "jointvae")


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    model: str = "jointvae"
    image_size: int = 32  # images enter at image_size x image_size x channels, in [0, 1]
    channels: int = 1
    continuous_dim: int = 10  # K, the diagonal Gaussian z
    discrete_dims: tuple[int, ...] = (10,)  # one relaxed one-hot variable per entry (jointvae)
    temperature: float = 0.67  # of the relaxed one-hot (Concrete) samples in training
    beta: float = 1.0  # eq. 2.11 (vae: 1)
    capacity_z: tuple[float, float] = (0.0, 5.0)  # C_z from, to (nats)
    capacity_z_iterations: int = 25000  # steps over which C_z rises linearly, then held
    gamma_z: float = 30.0
    capacity_c: tuple[float, float] = (0.0, 5.0)  # C_c from, to; capped at sum(log n_i)
    capacity_c_iterations: int = 25000
    gamma_c: float = 30.0
    weight_decay: float = 0.0  # L2 coefficient on every kernel (added to the loss)
    encoder_channels: tuple[int, ...] = (32, 32, 64)
    encoder_dense: tuple[int, ...] = (128,)  # ReLU layers after the convs
    encoder_linear: int = 128  # one linear layer before the latent heads (0: none)
    decoder_dense: int = 128  # ReLU layer before the 64 x 4 x 4 one (0: none)
    decoder_channels: tuple[int, ...] = (64, 32)  # transposed convs before the output one
    iwae_samples: int = 100  # importance samples of the final test log p(x) estimate
    ema_decay: float = 0.0
    mixed_precision: bool = False  # bfloat16 convs/dense layers; heads, likelihood, loss float32

    def __post_init__(self):
        for name in ("discrete_dims", "encoder_channels", "encoder_dense", "decoder_channels"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("capacity_z", "capacity_c"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        downsamplings = math.log2(self.image_size / 4) if self.image_size >= 4 else -1
        checks = [
            (self.model in VAE_MODELS, f"unknown VAE model {self.model!r}; choose {VAE_MODELS}"),
            (downsamplings >= 1 and downsamplings.is_integer(),
             f"image_size must be 4 * 2^n (32 or 64), got {self.image_size}"),
            (len(self.encoder_channels) == downsamplings,
             f"a {self.image_size}x{self.image_size} image needs {downsamplings:.0f} encoder "
             f"convolutions (4x4, stride 2, down to 4x4), got --encoder_channels="
             f"{','.join(map(str, self.encoder_channels))}"),
            (len(self.decoder_channels) == downsamplings - 1,
             f"a {self.image_size}x{self.image_size} image needs {downsamplings - 1:.0f} "
             "transposed convolutions before the output one, got --decoder_channels="
             f"{','.join(map(str, self.decoder_channels))}"),
            (self.channels >= 1, f"channels must be >= 1, got {self.channels}"),
            (self.continuous_dim >= 1, f"continuous_dim must be >= 1: {self.continuous_dim}"),
            (all(n >= 2 for n in self.discrete_dims), "every discrete variable needs >= 2 values"),
            (bool(self.discrete_dims) == (self.model == "jointvae"),
             "discrete latents (--discrete_dims) are for --model=jointvae only, and it needs "
             "at least one"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            (self.beta > 0, f"beta must be > 0, got {self.beta}"),
            (self.model != "vae" or self.beta == 1.0, "--model=vae is beta = 1"),
            (len(self.capacity_z) == 2 and len(self.capacity_c) == 2,
             "capacities are pairs: from, to"),
            (0 <= self.capacity_z[0] <= self.capacity_z[1], "need 0 <= C_z from <= C_z to"),
            (0 <= self.capacity_c[0] <= self.capacity_c[1], "need 0 <= C_c from <= C_c to"),
            (self.capacity_z_iterations >= 1 and self.capacity_c_iterations >= 1,
             "capacity iterations must be >= 1"),
            (self.gamma_z > 0 and self.gamma_c > 0, "gamma must be > 0"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (all(c >= 1 for c in (*self.encoder_channels, *self.decoder_channels)),
             "channel counts must be positive"),
            (all(u >= 1 for u in self.encoder_dense), "encoder_dense units must be positive"),
            (self.encoder_linear >= 0 and self.decoder_dense >= 0, "widths must be >= 0"),
            (self.iwae_samples >= 1, f"iwae_samples must be >= 1, got {self.iwae_samples}"),
            (0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}"),
            (isinstance(self.mixed_precision, bool),
             f"mixed_precision must be true or false, got {self.mixed_precision!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    family = "vae"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    @property
    def uses_capacity(self) -> bool:
        return self.model in CAPACITY_MODELS

    @property
    def max_discrete_kl(self) -> float:
        """The largest KL to a uniform prior the discrete code can reach: sum of log n_i."""
        return float(sum(math.log(n) for n in self.discrete_dims))

    def with_data(self, train_labels) -> VAEConfig:
        del train_labels
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown VAE config keys: {sorted(unknown)}")
        return cls(**d)
