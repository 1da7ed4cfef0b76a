"""VAE training through the shared trainer and CLI: a short run on the embedded digits, resume,
reports, figures, CelebA through TFDS's mock data, and the bad-input rules of the new flags."""

import json
import os
import sys

import matplotlib.image
import numpy as np
import pytest
import tensorflow_datasets as tfds
import tf_keras as keras

from deepvib.data import DataUnavailableError, fit_split, load_splits, make_dataset, resize_images
from deepvib.data.celeba import load_celeb_a
from deepvib.data.sources import Split
from deepvib.models import VAEConfig, build_model
from deepvib.training import run_dir, trainer
from deepvib.training.config import TrainConfig
from tests.helpers import forked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "bin", "train")
FIGURES = os.path.join(ROOT, "bin", "vae_figures")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
SMALL = dict(encoder_channels=(8, 8, 16), encoder_dense=(32,), encoder_linear=0,
             decoder_dense=32, decoder_channels=(16, 8), iwae_samples=4)


def small_jointvae(**overrides) -> VAEConfig:
    return VAEConfig(model="jointvae", capacity_z=(0.0, 5.0), capacity_z_iterations=120,
                     capacity_c=(0.0, 2.0), capacity_c_iterations=120, **{**SMALL, **overrides})


def run(*args, timeout=300):
    return forked.run([sys.executable, *args], cwd=ROOT, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("vae") / "jointvae")
    config = TrainConfig(model=small_jointvae(), output_dir=path, epochs=2, batch_size=64,
                         learning_rate=2e-3, adam_beta1=0.9, lr_decay_rate=1.0,
                         jit_compile=False)
    keras.utils.set_random_seed(0)
    untrained = build_model(config.model)
    untrained.compile()
    test = fit_split(load_splits("mnist_5k")["test"], (32, 32, 1))
    initial = untrained.evaluate(make_dataset(test, 500, shuffle=False), verbose=0,
                                 return_dict=True)
    lines = []
    metrics = trainer.train(config, log=lines.append)
    return {"path": path, "config": config, "metrics": metrics, "initial": initial,
            "lines": lines}


def test_a_short_run_lowers_the_test_loss_and_reports_the_vae_numbers(trained):
    metrics, initial = trained["metrics"], trained["initial"]
    assert metrics["family"] == "vae" and metrics["model"] == "jointvae"
    assert metrics["test"]["loss"] < initial["loss"] - 20  # nats per image
    assert metrics["test_elbo"] > initial["elbo"] + 20
    assert metrics["test_elbo"] == pytest.approx(
        metrics["test_reconstruction_ll"] - metrics["test_kl_z"] - metrics["test_kl_c"], abs=0.01)
    assert len(metrics["test_kl_z_per_dim"]) == 10
    assert sum(metrics["test_kl_z_per_dim"]) == pytest.approx(metrics["test_kl_z"], rel=1e-4)
    assert 0 <= metrics["active_units"] <= 10
    assert metrics["test_iwae_4"] >= metrics["test_elbo"] - 1.0  # a tighter bound, up to noise
    assert 0.1 <= metrics["discrete_accuracy"] <= 1.0
    assert sorted(map(int, metrics["discrete_mapping"])) == list(range(10))


def test_progress_records_name_their_split_and_the_capacity_schedule(trained):
    progress = run_dir.read_progress(trained["path"])
    assert [p["epoch"] for p in progress] == [1, 2]
    last_step = 4000 // 64 - 1  # C(t) at the epoch's last step, t counted from 0
    assert progress[0]["train_capacity_z"] == pytest.approx(5.0 * last_step / 120, rel=1e-5)
    assert progress[0]["train_capacity_c"] == pytest.approx(2.0 * last_step / 120, rel=1e-5)
    assert progress[1]["train_capacity_z"] == 5.0 and progress[1]["train_capacity_c"] == 2.0
    for key in ("train_loss", "test_loss", "test_elbo", "train_kl_c", "test_kl_z_3"):
        assert key in progress[0], key
    assert not any(k.startswith("val_") for k in progress[0])
    assert "KL_c train" in trained["lines"][0] and "test ELBO" in trained["lines"][0]


def test_a_resumed_vae_run_continues_from_its_checkpoint(trained):
    config = trained["config"]
    model, _ = run_dir.load_model(trained["path"])
    saved = [v.numpy() for v in model.trainable_variables]
    lines = []
    more = trainer.train(TrainConfig(**{**config.__dict__, "epochs": 3}), log=lines.append)
    assert lines[0].startswith("resuming from") and "(epoch 2)" in lines[0]
    assert [p["epoch"] for p in run_dir.read_progress(trained["path"])] == [1, 2, 3]
    assert more["epochs"] == 3
    resumed, _ = run_dir.load_model(trained["path"])
    moved = [np.abs(a - b.numpy()).max() for a, b in zip(saved, resumed.trainable_variables,
                                                          strict=True)]
    assert max(moved) > 0  # it trained on from the saved weights ...
    assert max(moved) < 1.0  # ... not from a fresh initialisation


def test_vae_figures_draw_reconstructions_traversals_and_prior_samples(trained, tmp_path):
    out = tmp_path / "figures"
    result = run(FIGURES, f"--model_dir={trained['path']}", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "figures.json").read_text())
    assert record["traversal_rows"] == [f"z{i}" for i in range(10)] + \
        [f"c={i}" for i in range(10)]
    assert "jointvae, mnist_5k, 3 epochs" in record["provenance"] or \
        "jointvae, mnist_5k, 2 epochs" in record["provenance"]
    traversals = matplotlib.image.imread(out / "traversals.png")
    recon = matplotlib.image.imread(out / "reconstructions.png")
    # 20 rows of 10 digits is a tall picture; 4 rows of 10 a wide one
    assert traversals.shape[0] > 1.5 * traversals.shape[1]
    assert recon.shape[1] > 1.5 * recon.shape[0]
    assert (out / "prior_samples.png").stat().st_size > 1000


def test_vae_figures_refuse_a_classifier_run(tmp_path):
    path = str(tmp_path / "vib")
    from deepvib.models import ModelConfig
    run_dir.prepare(TrainConfig(model=ModelConfig(hidden_units=(8,), bottleneck_dim=2),
                                output_dir=path))
    result = run(FIGURES, f"--model_dir={path}")
    assert result.returncode == 2
    assert "not a VAE" in result.stderr


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--model=jointvae", "--discrete_dims=1"], "needs >= 2 values"),
    (["--model=capacity_vae", "--capacity_z=5"], "--capacity_z takes two numbers"),
    (["--modle=vae"], "Unknown command line flag 'modle'"),
])
def test_bad_vae_flags_exit_2_before_training(tmp_path, args, message):
    result = run(TRAIN, *args, f"--output_dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_strategy_check_names_the_reason():
    with pytest.raises(ValueError, match="does not split across replicas"):
        TrainConfig(model=small_jointvae(), output_dir="x", strategy="mirrored")


# -- data -----------------------------------------------------------------------------------
def test_mnist_is_resized_to_32_bilinearly_within_the_unit_interval():
    images = np.zeros((2, 28, 28, 1), np.float32)
    images[:, 10:18, 10:18] = 1.0
    resized = resize_images(images, 32)
    assert resized.shape == (2, 32, 32, 1) and resized.dtype == np.float32
    assert resized.min() >= 0 and resized.max() <= 1
    assert resized.sum() == pytest.approx(images.sum() * (32 / 28) ** 2, rel=0.02)
    with pytest.raises(ValueError, match="only square images of the same channels"):
        fit_split(Split(images, np.zeros(2, np.int64)), (32, 32, 3))


def test_celeb_a_without_a_prepared_copy_says_what_to_do(tmp_path):
    with pytest.raises(DataUnavailableError, match="tfds build celeb_a"):
        load_celeb_a("test", data_dir=str(tmp_path))


def test_celeb_a_trains_a_64x64_vae_on_tfds_mock_data(tmp_path):
    config = TrainConfig(
        model=VAEConfig(model="vae", discrete_dims=(), image_size=64, channels=3,
                        encoder_channels=(8, 8, 8, 16), encoder_dense=(32,), encoder_linear=0,
                        decoder_dense=32, decoder_channels=(16, 8, 8), iwae_samples=2),
        output_dir=str(tmp_path / "celeba"), dataset="celeb_a", epochs=1, batch_size=16,
        jit_compile=False)
    with tfds.testing.mock_data(num_examples=32):
        split = load_celeb_a("train")
        metrics = trainer.train(config, log=lambda _: None)
    assert split.images.shape == (32, 64, 64, 3) and split.images.dtype == np.uint8
    assert np.isfinite(metrics["test_elbo"])
    assert "discrete_accuracy" not in metrics  # CelebA has no labels
