"""`bin/latent_attack`, `deepvib.experiments.latent_experiment` and `bin/latent_attack_report`
on a real (tiny) VAE: a JointVAE trained for one epoch on the embedded mnist_5k by the trainer
`bin/train` runs, and a deterministic classifier, both a few seconds of training.

The CLI is run once as a child process (tests/helpers/forked.py); the record is checked
against an independent recomputation (the pairs from `draw_pairs`, the reconstructions of the
saved adversarials classified again, the scores from `latent_scoring`), then resumed and
drawn. Bad input (a classifier as a VAE, a VIB as the scorer, c <= 0, a run without
checkpoint, results of another experiment) fails before any optimisation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from deepvib.attacks import latent
from deepvib.data import resize_images
from deepvib.data.sources import load_split
from deepvib.experiments import latent_experiment as lx
from deepvib.experiments import latent_scoring
from deepvib.experiments.latent_figures import draw_all, example_rows
from deepvib.experiments.latent_pairs import draw_pairs
from deepvib.models import ModelConfig, build_model
from deepvib.models.vae_config import VAEConfig
from deepvib.training import run_dir
from deepvib.training.config import TrainConfig
from deepvib.training.trainer import train
from tests.helpers import forked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENT_ATTACK = os.path.join(ROOT, "bin", "latent_attack")
TINY = dict(pairs_per_class_pair=1, repeats=2, seed=3, constants=(0.1, 1.0),
            operating_constant=1.0, max_iterations=20, learning_rate=0.05, batch_size=64)
TINY_FLAGS = ["--pairs_per_class_pair=1", "--repeats=2", "--seed=3", "--constants=0.1,1",
              "--operating_constant=1", "--max_iterations=20", "--learning_rate=0.05",
              "--batch_size=64"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_vae_config(path: str) -> TrainConfig:
    """A JointVAE whose capacities are held at 5 / 2 nats from the first step, so that one
    short epoch already gives an encoder that depends on its input (with the usual ramp from 0
    the posterior is still the prior, and the attack's optimum is r = 0)."""
    model = VAEConfig(model="jointvae", continuous_dim=4, discrete_dims=(10,),
                      capacity_z=(5.0, 5.0), capacity_c=(2.0, 2.0),
                      encoder_channels=(8, 8, 8), encoder_dense=(16,), encoder_linear=0,
                      decoder_dense=16, decoder_channels=(8, 8), iwae_samples=2)
    return TrainConfig(model=model, output_dir=path, dataset="mnist_5k", epochs=1,
                       batch_size=256, learning_rate=1e-3, jit_compile=False)


def tiny_classifier_config(path: str, model: str = "deterministic") -> TrainConfig:
    config = ModelConfig(model=model, hidden_units=(32,), bottleneck_dim=4,
                         beta=1e-3 if model == "vib" else 0.0,
                         eval_samples=4 if model == "vib" else 1)
    return TrainConfig(model=config, output_dir=path, dataset="mnist_5k", epochs=1,
                       batch_size=256, learning_rate=1e-3, jit_compile=False)


def untrained_run(config: TrainConfig) -> str:
    """A run directory with config.json and a checkpoint of the freshly built model."""
    run_dir.prepare(config)
    model = build_model(config.model)
    run_dir.checkpoint_manager(config.output_dir, tf.train.Checkpoint(model=model)).save(1)
    return config.output_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("latent_runs")
    quiet = lambda line: None  # noqa: E731
    paths = {"vae": str(base / "tiny_jointvae"), "classifier": str(base / "deterministic")}
    train(tiny_vae_config(paths["vae"]), log=quiet)
    train(tiny_classifier_config(paths["classifier"]), log=quiet)
    paths["vib"] = untrained_run(tiny_classifier_config(str(base / "vib"), "vib"))
    return paths


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return forked.run([sys.executable, LATENT_ATTACK, *args], timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def attacked(runs, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("latent_out") / "attack")
    proc = run_tool(f"--vae_dirs={runs['vae']}", f"--classifier_dir={runs['classifier']}",
                    f"--output_dir={out}", *TINY_FLAGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_the_record_matches_an_independent_recomputation(runs, attacked):
    record = lx.load_records(attacked)[0]
    assert record["run_name"] == "tiny_jointvae" and record["model_kind"] == "jointvae"
    test = load_split("mnist_5k", "test")
    pairs = draw_pairs(test.labels, 1, 2, seed=3)
    assert record["pairs"] == pairs.to_json_dict()
    assert len(pairs) == 180
    with np.load(os.path.join(attacked, "tiny_jointvae", lx.IMAGES_NPZ)) as saved:
        images = {k: saved[k] for k in saved.files}
    np.testing.assert_allclose(images["sources"],
                               resize_images(test.images[pairs.source_index], 32))
    adversarial = images["adversarial"]
    assert adversarial.shape == (2, 180, 32, 32, 1)
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    l2 = np.linalg.norm((adversarial - images["sources"][None]).reshape(2, 180, -1), axis=2)
    np.testing.assert_allclose(record["attack"]["per_constant"]["l2"], l2, rtol=1e-4,
                               atol=1e-6)
    assert np.mean(l2[0]) > 0  # the attack moved the images
    # The operating c's reconstructions, classified again at 28x28.
    vae, _ = run_dir.load_model(runs["vae"])
    classifier, _ = run_dir.load_model(runs["classifier"])
    k = int(images["operating"])
    recon = vae.reconstruct(tf.constant(adversarial[k])).numpy()
    np.testing.assert_allclose(images["adversarial_reconstruction"], recon, atol=1e-5)
    predicted = np.argmax(classifier.predictive_log_probs(
        tf.constant(resize_images(recon, 28))).numpy(), axis=1)
    assert np.mean(predicted == np.asarray(record["predicted"][k])) > 0.99
    # The latent distance is that of the JointVAE's [continuous mean, category probabilities].
    mu_adv = vae.latent_mean(tf.constant(adversarial[k])).numpy()
    mu_t = vae.latent_mean(tf.constant(images["targets"])).numpy()
    assert mu_adv.shape[1] == 4 + 10
    np.testing.assert_allclose(record["attack"]["per_constant"]["latent_distance"][k],
                               np.linalg.norm(mu_adv - mu_t, axis=1), rtol=1e-3, atol=1e-5)
    # Scores are latent_scoring's on the recorded predictions.
    tables = latent_scoring.score(pairs.source_class, pairs.target_class,
                                  np.asarray(record["predicted"][k]), pairs.repeat)
    assert record["scores_by_constant"][k]["target"] == pytest.approx(
        tables["target"].overall_mean)
    assert lx.tables_at(record)["ignore_target"].overall_mean == pytest.approx(
        tables["ignore_target"].overall_mean)
    assert record["classifier"]["test_error"] is not None
    for name in (lx.SUMMARY_JSON, lx.SUMMARY_MD):
        assert os.path.isfile(os.path.join(attacked, name))
    md = open(os.path.join(attacked, "tiny_jointvae", lx.RECORD_MD), encoding="utf-8").read()
    assert "| Source \\ Target |" in md


def test_a_finished_run_is_skipped_and_other_parameters_are_refused(runs, attacked):
    config = lx.LatentAttackConfig(**TINY)
    record_path = os.path.join(attacked, "tiny_jointvae", lx.RECORD_JSON)
    before = os.stat(record_path).st_mtime_ns
    lines = []
    plan = lx.prepare([runs["vae"]], runs["classifier"], config, attacked)
    lx.run(plan, log=lines.append)
    assert "skipped" in lines[0] and os.stat(record_path).st_mtime_ns == before
    other = lx.LatentAttackConfig(**{**TINY, "max_iterations": 21})
    with pytest.raises(ValueError, match="other parameters"):
        lx.prepare([runs["vae"]], runs["classifier"], other, attacked)


class LinearVAE:
    """A stand-in VAE: linear encoder mean, identity reconstruction."""

    def __init__(self, seed: int = 0):
        self.a = np.random.default_rng(seed).normal(size=(32 * 32, 3)).astype(np.float32) / 32

    def latent_mean(self, images, discrete_code="probabilities"):
        del discrete_code  # no discrete code
        return tf.matmul(tf.reshape(images, [tf.shape(images)[0], -1]), self.a)

    def reconstruct(self, images):
        return tf.convert_to_tensor(images)


class LinearClassifier:
    """A stand-in classifier on 28x28 images: argmax of 10 fixed random projections."""

    def __init__(self, seed: int = 1):
        self.w = np.random.default_rng(seed).normal(size=(28 * 28, 10)).astype(np.float32)

    def predictive_log_probs(self, images):
        assert images.shape[1:] == (28, 28, 1)
        logits = np.reshape(np.asarray(images), (len(images), -1)) @ self.w
        return tf.nn.log_softmax(logits)

    def classify(self, images32: np.ndarray) -> np.ndarray:
        return np.argmax(self.predictive_log_probs(resize_images(images32, 28)), axis=1)


def test_predictions_are_of_the_adversarial_reconstructions(runs, tmp_path, monkeypatch):
    """With stand-in models whose outputs are known, the recorded predictions are the
    classifier's on the (28x28-resized) reconstructions of the adversarials at each c, not of
    the sources."""
    vae, classifier = LinearVAE(), LinearClassifier()
    stand_ins = {runs["vae"]: vae, runs["classifier"]: classifier}
    monkeypatch.setattr(run_dir, "load_model", lambda path: (stand_ins[path], None))
    config = lx.LatentAttackConfig(**{**TINY, "constants": (0.01, 1.0)})
    plan = lx.prepare([runs["vae"]], runs["classifier"], config, str(tmp_path))
    record = lx.run(plan, log=lambda line: None)[0]
    with np.load(os.path.join(tmp_path, "tiny_jointvae", lx.IMAGES_NPZ)) as saved:
        adversarial, sources = saved["adversarial"], saved["sources"]
    on_sources = classifier.classify(sources)
    for k in range(2):
        expected = classifier.classify(adversarial[k])
        np.testing.assert_array_equal(record["predicted"][k], expected)
    assert np.sum(np.asarray(record["predicted"][0]) != on_sources) >= 5  # discriminates
    np.testing.assert_array_equal(record["clean"]["source_reconstruction_predicted"],
                                  on_sources)
    assert record["checkpoint"] == "ckpt-1" and record["trained"]["epochs_done"] == 1


def test_report_draws_every_figure(attacked, tmp_path):
    written = draw_all(attacked, str(tmp_path))
    assert sorted(os.path.basename(p) for p in written) == [
        "as_vs_c.png", "tiny_jointvae_examples.png", "tiny_jointvae_heatmaps.png"]
    for path in written:
        with open(path, "rb") as f:
            assert f.read(8) == PNG_SIGNATURE
    # From records alone (a committed results directory has no images.npz).
    records_only = tmp_path / "records_only"
    os.makedirs(records_only / "tiny_jointvae")
    for name in (lx.RECORD_JSON, lx.RECORD_MD):
        shutil.copy(os.path.join(attacked, "tiny_jointvae", name), records_only / "tiny_jointvae")
    with pytest.raises(FileNotFoundError, match="images.npz"):
        draw_all(str(records_only), str(tmp_path / "figures"))
    drawn = draw_all(str(records_only), str(tmp_path / "figures"), without_images=True)
    assert sorted(os.path.basename(p) for p in drawn) == [
        "as_vs_c.png", "tiny_jointvae_heatmaps.png"]
    with open(os.path.join(attacked, lx.SUMMARY_MD), encoding="utf-8") as f:
        assert (records_only / lx.SUMMARY_MD).read_text(encoding="utf-8") == f.read()


def test_example_rows_pair_each_source_with_the_next_targets():
    pairs = draw_pairs(np.repeat(np.arange(10), 3), 1, 2, seed=0)
    rows = example_rows({"pairs": pairs.to_json_dict()}, per_source=2)
    shown = [(pairs.source_class[i], pairs.target_class[i], pairs.repeat[i]) for i in rows]
    assert shown == [(s, (s + k) % 10, 0) for s in range(10) for k in (1, 2)]


def test_a_classifier_run_is_not_a_vae(runs, tmp_path):
    proc = run_tool(f"--vae_dirs={runs['classifier']}", f"--classifier_dir={runs['classifier']}",
                    f"--output_dir={tmp_path / 'out'}", *TINY_FLAGS)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("latent_attack: error:")
    assert "not a VAE" in proc.stderr
    assert not os.path.exists(tmp_path / "out")


def test_bad_runs_fail_before_any_optimisation(runs, tmp_path, monkeypatch):
    def no_attack(*args, **kwargs):
        raise AssertionError("optimisation started")

    monkeypatch.setattr(latent, "latent_attack", no_attack)
    config = lx.LatentAttackConfig(**TINY)
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match="deterministic classifier"):
        lx.prepare([runs["vae"]], runs["vib"], config, out)
    with pytest.raises(ValueError, match="share the base name"):
        lx.prepare([runs["vae"], runs["vae"]], runs["classifier"], config, out)
    bare = str(tmp_path / "bare")
    run_dir.prepare(tiny_vae_config(bare))
    with pytest.raises(run_dir.RunDirError, match="no checkpoint"):
        lx.prepare([bare], runs["classifier"], config, out)
    with pytest.raises(ValueError, match="not a deepvib run directory"):
        lx.prepare([str(tmp_path / "missing")], runs["classifier"], config, out)
    assert not os.path.exists(out)


@pytest.mark.parametrize("change, message", [
    ({"constants": (0.0, 1.0)}, "finite and > 0"),
    ({"constants": (-0.1, 1.0)}, "finite and > 0"),
    ({"operating_constant": 0.5}, "must be one of the constants"),
    ({"repeats": 0}, "positive integer"),
    ({"pairs_per_class_pair": 0}, "positive integer"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"discrete_code": "logits"}, "discrete_code must be one of"),
])
def test_bad_experiment_parameters(change, message):
    with pytest.raises(ValueError, match=message):
        lx.LatentAttackConfig(**{**TINY, **change})


def test_the_default_grid_is_the_attack_modules():
    assert lx.DEFAULT_CONSTANTS == latent.DEFAULT_CONSTANTS
    assert lx.OPERATING_CONSTANT == latent.OPERATING_CONSTANT
    assert lx.LatentAttackConfig().constants == latent.DEFAULT_CONSTANTS


def test_clean_conditioned_rates_drop_pairs_the_pipeline_gets_wrong():
    record = {
        "pairs": {"source_class": [0, 1, 2, 3], "target_class": [1, 2, 0, 4]},
        "clean": {"source_reconstruction_predicted": [0, 1, 9, 3],
                  "target_reconstruction_predicted": [1, 2, 0, 7]},
        "attack": {"constants": [0.1, 1.0]},
        "predicted": [[1, 1, 0, 4], [0, 1, 0, 4]],
    }
    rows = lx.clean_conditioned(record)
    assert rows == [{"c": 0.1, "n": 2, "ignore_target": 0.5, "target": 0.5},
                    {"c": 1.0, "n": 2, "ignore_target": 0.0, "target": 0.0}]


def test_the_code_attacked_on_log_probabilities_is_recorded_as_another_experiment(
        runs, attacked, tmp_path):
    """`discrete_code="log_probabilities"`: the recorded latent distance is that of
    [continuous mean, log category probabilities], the parameters say so (and only then: the
    default leaves records from before the option unchanged), and the earlier record of the
    same run with probabilities is not taken for this experiment."""
    assert "discrete_code" not in lx.LatentAttackConfig(**TINY).params()
    config = lx.LatentAttackConfig(**TINY, discrete_code="log_probabilities")
    assert config.params()["discrete_code"] == "log_probabilities"
    with pytest.raises(ValueError, match="other parameters"):
        lx.prepare([runs["vae"]], runs["classifier"], config, attacked)
    record = lx.run(lx.prepare([runs["vae"]], runs["classifier"], config, str(tmp_path)),
                    log=lambda line: None)[0]
    assert "log-probabilities" in record["latent"]["attacked_mean"]
    assert "log-probabilities" in lx.display_name(record)
    with np.load(os.path.join(tmp_path, "tiny_jointvae", lx.IMAGES_NPZ)) as saved:
        adversarial, targets = saved["adversarial"], saved["targets"]
    vae, _ = run_dir.load_model(runs["vae"])
    k = 1
    codes = {c: [vae.latent_mean(tf.constant(x), discrete_code=c).numpy()
                 for x in (adversarial[k], targets)]
             for c in ("probabilities", "log_probabilities")}
    distance = {c: np.linalg.norm(a - t, axis=1) for c, (a, t) in codes.items()}
    recorded = np.asarray(record["attack"]["per_constant"]["latent_distance"][k])
    np.testing.assert_allclose(recorded, distance["log_probabilities"], rtol=1e-3, atol=1e-5)
    assert np.max(np.abs(recorded - distance["probabilities"])) > 0.1


def test_a_record_written_before_a_model_field_existed_still_counts(runs, attacked, tmp_path):
    """Records of earlier versions lack model-config fields added since (`mixed_precision`):
    such a field at its default is the same model, a changed saved value is not."""
    out = str(tmp_path / "attack")
    shutil.copytree(attacked, out)
    path = os.path.join(out, "tiny_jointvae", lx.RECORD_JSON)
    record = lx.atomic.read_json(path)
    assert record["model"].pop("mixed_precision") is False
    lx.atomic.write_json(path, record)
    config = lx.LatentAttackConfig(**TINY)
    plan = lx.prepare([runs["vae"]], runs["classifier"], config, out)
    assert lx.is_done(plan.jobs[0], plan)
    record["model"]["continuous_dim"] += 1
    lx.atomic.write_json(path, record)
    assert not lx.is_done(plan.jobs[0], plan)


def test_the_cli_passes_the_discrete_code_on(runs, tmp_path):
    out = str(tmp_path / "attack")
    proc = run_tool(f"--vae_dirs={runs['vae']}", f"--classifier_dir={runs['classifier']}",
                    f"--output_dir={out}", "--pairs_per_class_pair=1", "--repeats=1",
                    "--constants=1", "--operating_constant=1", "--max_iterations=2",
                    "--discrete_code=log_probabilities")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = lx.load_records(out)[0]
    assert record["params"]["discrete_code"] == "log_probabilities"
    assert "log-probabilities" in record["latent"]["attacked_mean"]
