"""`run_dir.load_model` hands out the averaged weights for good: evaluating or exporting the
loaded model never swaps the raw weights back in."""

import numpy as np
import tensorflow as tf

from deepvib.models import ModelConfig, build_model
from deepvib.training import run_dir
from deepvib.training.config import TrainConfig


def test_a_loaded_model_keeps_its_averaged_weights(tmp_path):
    config = ModelConfig(model="vib", hidden_units=(8,), bottleneck_dim=2, ema_decay=0.9)
    path = str(tmp_path / "run")
    run_dir.prepare(TrainConfig(model=config, output_dir=path, epochs=1))
    model = build_model(config)
    for average in model.ema_variables:
        average.assign(tf.fill(average.shape, 0.5))  # averages unlike the raw weights
    run_dir.checkpoint_manager(path, tf.train.Checkpoint(model=model)).save(checkpoint_number=1)

    loaded, _ = run_dir.load_model(path)
    weights = [v.numpy() for v in loaded.trainable_variables]
    assert all(np.all(w == 0.5) for w in weights)
    with loaded.averaged_weights():  # a no-op now: no raw weights to swap back in
        assert all(np.all(v.numpy() == 0.5) for v in loaded.trainable_variables)
    raw, _ = run_dir.load_model(path, averaged=False)
    assert not all(np.all(v.numpy() == 0.5) for v in raw.trainable_variables)
