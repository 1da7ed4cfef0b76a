"""`bin/attack` and the attack `logits_fn` of trained models (Alemi et al. 2017, section 4.2).

Two tiny run directories (VIB and deterministic, a few dozen training steps on the embedded
mnist_5k, written the way the trainer writes them) are attacked with tiny Carlini & Wagner
settings: targeted by a `bin/attack` child process and, side by side, untargeted in-process; the
attack.json files, the adversarial images, resuming, bad input and the figures command are
checked against them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from matplotlib import image as mpimg

from deepvib.experiments import robustness
from deepvib.experiments import robustness_figures as rf
from deepvib.experiments.attack_config import AttackConfig, choose_targets, select_indices
from deepvib.experiments.model_logits import attack_logits_fn
from deepvib.models import ModelConfig, build_model
from deepvib.models.logit_gaussian import logit_gaussian
from tests.helpers import forked
from tests.helpers.classifier_runs import tiny_model_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATTACK = os.path.join(ROOT, "bin", "attack")
FIGURES = os.path.join(ROOT, "bin", "robustness_figures")
NUM_IMAGES = 8
SEED = 3
TINY_CW = ["--attack=cw_l2", f"--num_images={NUM_IMAGES}", "--max_iterations=40",
           "--binary_search_steps=2", "--learning_rate=0.1", "--initial_const=1",
           f"--seed={SEED}"]
TINY_CW_CONFIG = dict(attack="cw_l2", num_images=NUM_IMAGES, max_iterations=40,
                      binary_search_steps=2, learning_rate=0.1, initial_const=1.0, seed=SEED)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    return forked.run([sys.executable, tool, *args], timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def runs(tiny_classifier_runs) -> dict[str, str]:
    return tiny_classifier_runs  # tests/conftest.py: shared with tests/test_adaptive_cli.py


@pytest.fixture(scope="module")
def attacks(runs, tmp_path_factory) -> dict[str, str]:
    """Targeted CW through bin/attack (a child process) and, meanwhile, untargeted CW through the
    same code in this process (`prepare_jobs` + `run_jobs`), both on both runs."""
    out = tmp_path_factory.mktemp("attacks")
    dirs = {k: str(out / k) for k in ("targeted", "untargeted")}
    command = [sys.executable, ATTACK, *TINY_CW, "--targeted", "--cw_batch_size=8",
               f"--model_dirs={runs['vib']},{runs['deterministic']}",
               f"--output_dir={dirs['targeted']}"]
    proc = forked.start(command, cwd=ROOT)
    # Two CW batches per model: exercises the merging of per-batch results.
    config = AttackConfig(**TINY_CW_CONFIG, cw_batch_size=4)
    jobs = robustness.prepare_jobs([runs["vib"], runs["deterministic"]], config,
                                   dirs["untargeted"])
    robustness.run_jobs(jobs, config, log=lambda line: None)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"{stdout}\n{stderr}"
    assert "vib: success rate" in stdout and "deterministic: success rate" in stdout
    return dirs


def read_record(experiment_dir: str, run: str) -> dict:
    with open(os.path.join(experiment_dir, run, "attack.json"), encoding="utf-8") as f:
        return json.load(f)


def test_targeted_attack_json(attacks):
    test = robustness.load_test_split("mnist_5k", None)
    labels = test.labels[:NUM_IMAGES]
    for run in ("vib", "deterministic"):
        record = read_record(attacks["targeted"], run)
        ex = {k: np.asarray(v) for k, v in record["per_example"].items()}
        assert record["format"] == "deepvib.attack/1"
        assert record["params"]["targeted"] and record["params"]["max_iterations"] == 40
        assert record["model"]["model"] == run and record["model_kind"] == run
        assert record["beta"] == (1e-3 if run == "vib" else None)
        assert record["logits"] == ({"kind": "vib_log_mean_softmax", "num_samples": 12,
                                     "sampling": "logit_space"}
                                    if run == "vib" else {"kind": "logits", "num_samples": None})
        for key in ("index", "labels", "targets", "predicted", "clean_predicted", "success",
                    "l0", "l2", "linf"):
            assert ex[key].shape == (NUM_IMAGES,), key
        np.testing.assert_array_equal(ex["index"], np.arange(NUM_IMAGES))
        np.testing.assert_array_equal(ex["labels"], labels)
        assert np.all(ex["targets"] != ex["labels"])
        # Seeded: the targets are a function of the seed and the labels only.
        np.testing.assert_array_equal(ex["targets"], choose_targets(labels, SEED))
        np.testing.assert_array_equal(ex["success"], ex["predicted"] == ex["targets"])
        assert np.all(ex["l0"] <= 784) and np.all(ex["linf"] <= 1.0)
        summary = record["summary"]
        assert summary["n"] == NUM_IMAGES and summary["targeted"]
        assert summary["success_rate"] == pytest.approx(ex["success"].mean())
        assert summary["accuracy_under_attack"] == pytest.approx(
            np.mean(ex["predicted"] == ex["labels"]))
        assert summary["clean_accuracy"] == pytest.approx(
            np.mean(ex["clean_predicted"] == ex["labels"]))
        assert summary["n_perturbed"] == int(np.sum(ex["l2"] > 0))
        assert summary["n_perturbed"] > 0, "the tiny attack should find some adversarials"
        for norm in ("l0", "l2", "linf"):  # means over the successful examples only
            if ex["success"].any():
                assert summary[f"mean_{norm}"] == pytest.approx(ex[norm][ex["success"]].mean())
            else:
                assert summary[f"mean_{norm}"] is None
        if run == "deterministic":  # no sampling: every adversarial found is a success
            assert summary["n_perturbed"] <= summary["n_success"]
        check_adversarial_npz(attacks["targeted"], run, test.images[:NUM_IMAGES], ex)


def check_adversarial_npz(experiment_dir: str, run: str, originals: np.ndarray,
                          ex: dict[str, np.ndarray]) -> None:
    with np.load(os.path.join(experiment_dir, run, "adversarial.npz")) as data:
        np.testing.assert_array_equal(data["indices"], ex["index"])
        np.testing.assert_array_equal(data["original"], originals)
        adversarial = data["adversarial"]
    assert adversarial.shape == originals.shape
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    delta = (adversarial.astype(np.float64) - originals).reshape(len(originals), -1)
    np.testing.assert_allclose(np.linalg.norm(delta, axis=1), ex["l2"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.abs(delta).max(axis=1), ex["linf"], rtol=1e-5, atol=1e-7)
    # L0 counts pixels changed by more than 1e-5 (CW's tanh round trip moves others ~1e-6)
    np.testing.assert_array_equal(np.sum(np.abs(delta) > 1e-5, axis=1), ex["l0"])


def test_untargeted_attack_keeps_clean_misclassified_images(attacks):
    record = read_record(attacks["untargeted"], "deterministic")
    ex = {k: np.asarray(v) for k, v in record["per_example"].items()}
    assert record["per_example"]["targets"] is None and not record["summary"]["targeted"]
    np.testing.assert_array_equal(ex["success"], ex["predicted"] != ex["labels"])
    wrong = ex["clean_predicted"] != ex["labels"]
    assert wrong.any() and (~wrong).any(), "the tiny model should get some images right"
    # Already misclassified: a success with zero perturbation, returned unchanged.
    assert np.all(ex["success"][wrong]) and np.all(ex["l2"][wrong] == 0)
    np.testing.assert_array_equal(ex["predicted"][wrong], ex["clean_predicted"][wrong])
    assert np.all(ex["l2"][~wrong & ex["success"]] > 0)
    summary = record["summary"]
    assert summary["accuracy_under_attack"] <= summary["clean_accuracy"]
    assert summary["n_success"] == int(ex["success"].sum())


def test_rerun_skips_finished_models_and_refuses_other_parameters(runs, attacks):
    args = dict(TINY_CW_CONFIG, cw_batch_size=8)
    config = AttackConfig(targeted=True, **args)
    before = read_record(attacks["targeted"], "vib")
    jobs = robustness.prepare_jobs([runs["vib"]], config, attacks["targeted"])
    logs: list[str] = []
    records = robustness.run_jobs(jobs, config, log=logs.append)
    assert records == [before] and "skipped" in logs[0]
    other = AttackConfig(targeted=True, **{**args, "seed": SEED + 1})
    with pytest.raises(ValueError, match="--overwrite"):
        robustness.prepare_jobs([runs["vib"]], other, attacks["targeted"])


def test_a_record_written_before_a_model_field_existed_still_counts(runs, attacks, tmp_path):
    """Records of earlier versions lack model-config fields added since (`kl_estimator`): at
    its default that is the same model, and the rerun skips it; another model is refused."""
    out = str(tmp_path / "targeted")
    shutil.copytree(attacks["targeted"], out)
    path = os.path.join(out, "vib", "attack.json")
    record = read_record(out, "vib")
    assert record["model"].pop("kl_estimator") == "analytic"
    robustness.atomic.write_json(path, record)
    config = AttackConfig(targeted=True, **TINY_CW_CONFIG, cw_batch_size=8)
    (job,) = robustness.prepare_jobs([runs["vib"]], config, out)
    assert robustness.is_done(job, config)
    record["model"]["bottleneck_dim"] += 1
    robustness.atomic.write_json(path, record)
    with pytest.raises(ValueError, match="--overwrite"):
        robustness.prepare_jobs([runs["vib"]], config, out)


def test_sampling_vib_adversarials_are_judged_on_redraws(runs, attacks, tmp_path):
    """A 12-sample VIB's adversarials get REDRAWS fresh evaluations (deterministic models
    none); a record that predates them gets them added when a rerun skips it."""
    for experiment in ("targeted", "untargeted"):
        vib = read_record(attacks[experiment], "vib")
        assert vib["summary"]["redraws"] == robustness.REDRAWS
        accuracy = np.asarray(vib["per_example"]["redrawn_accuracy"])
        success = np.asarray(vib["per_example"]["redrawn_success"])
        assert accuracy.shape == success.shape == (NUM_IMAGES,)
        # fractions of REDRAWS evaluations: whole counts out of 20
        for fraction in (accuracy, success):
            counts = fraction * robustness.REDRAWS
            np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)
        assert vib["summary"]["redrawn_accuracy_under_attack"] == pytest.approx(accuracy.mean())
        if experiment == "untargeted":
            np.testing.assert_allclose(accuracy + success, 1.0)
        else:  # a targeted success needs the target: at most the draws not predicting the label
            assert np.all(accuracy + success <= 1.0 + 1e-9)
        assert "redraws" not in read_record(attacks[experiment], "deterministic")["summary"]
    # An old record without redraws: the skipping rerun completes it.
    copy = tmp_path / "untargeted"
    shutil.copytree(attacks["untargeted"], copy)
    path = copy / "vib" / "attack.json"
    record = json.loads(path.read_text())
    del record["summary"]["redraws"]
    path.write_text(json.dumps(record))
    config = AttackConfig(**TINY_CW_CONFIG, cw_batch_size=4)
    jobs = robustness.prepare_jobs([runs["vib"]], config, str(copy))
    logs: list[str] = []
    (completed,) = robustness.run_jobs(jobs, config, log=logs.append)
    assert completed["summary"]["redraws"] == robustness.REDRAWS
    assert json.loads(path.read_text())["summary"]["redraws"] == robustness.REDRAWS
    assert any("redrawn" in line for line in logs)


def test_redraws_count_targeted_success_only_on_the_target():
    """Hand-made redraws: 4 draws x 3 examples, labels 0, 1, 2, targets 5, 6, 7."""
    predictions = np.array([[0, 6, 3], [5, 1, 7], [5, 6, 2], [9, 6, 7]])
    targeted = {"per_example": {"labels": [0, 1, 2], "targets": [5, 6, 7]}, "summary": {}}
    robustness.add_redraws(targeted, predictions)
    ex = targeted["per_example"]
    assert ex["redrawn_accuracy"] == [0.25, 0.25, 0.25]
    assert ex["redrawn_success"] == [0.5, 0.75, 0.5]  # a 9 or a 3 is wrong, but no success
    assert targeted["summary"]["redraws"] == 4
    assert targeted["summary"]["redrawn_success_rate"] == pytest.approx(1.75 / 3)
    assert targeted["summary"]["redrawn_accuracy_under_attack"] == pytest.approx(0.25)
    untargeted = {"per_example": {"labels": [0, 1, 2], "targets": None}, "summary": {}}
    robustness.add_redraws(untargeted, predictions)
    assert untargeted["per_example"]["redrawn_success"] == [0.75, 0.75, 0.75]


def test_success_samples_judge_the_search(runs, tmp_path, monkeypatch):
    """--success_samples: a sampling VIB's search success is judged on an independent
    predictive (recorded with the parameters); a deterministic model ignores it."""
    searches = []
    real_cw_l2 = robustness.cw_l2

    def watched_cw_l2(logits_fn, *args, **kwargs):
        searches.append((logits_fn, kwargs.get("success_fn")))
        return real_cw_l2(logits_fn, *args, **kwargs)

    monkeypatch.setattr(robustness, "cw_l2", watched_cw_l2)
    config = AttackConfig(**TINY_CW_CONFIG, cw_batch_size=4, success_samples=50)
    jobs = robustness.prepare_jobs([runs["vib"], runs["deterministic"]], config, str(tmp_path))
    vib, deterministic = robustness.run_jobs(jobs, config, log=lambda line: None)
    (attacked, judge), (_, no_judge) = searches
    assert no_judge is None  # a deterministic model is its own judge
    # The VIB's search was judged by another predictive: a normalised log-distribution
    # whose draws average 50 samples, so they vary about 12/50 as much as the attacked ones.
    assert judge is not None and judge is not attacked
    x = tf.constant(jobs[0].images)
    judged = np.stack([judge(x).numpy() for _ in range(20)]).astype(np.float64)
    attacked_draws = np.stack([attacked(x).numpy() for _ in range(20)]).astype(np.float64)
    np.testing.assert_allclose(np.exp(judged).sum(-1), 1.0, atol=1e-5)
    ratio = judged.var(axis=0).sum() / attacked_draws.var(axis=0).sum()
    assert 0.1 < ratio < 0.45, ratio
    assert vib["params"]["success_samples"] == 50
    assert vib["search_success_judged_on"] == {
        "kind": "vib_log_mean_softmax", "num_samples": 50, "independent_draws": True}
    assert deterministic["search_success_judged_on"] == "attacked_scores"
    assert "success_samples" not in AttackConfig(**TINY_CW_CONFIG).params()


def test_figures_from_attack_outputs(attacks, tmp_path):
    out = tmp_path / "figures"
    proc = run_tool(FIGURES, f"--zeros_to_ones_dir={attacks['targeted']}",
                    f"--targeted_dir={attacks['targeted']}",
                    f"--untargeted_dir={attacks['untargeted']}", f"--output_dir={out}")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "robustness_summary.json").read_text())
    assert set(summary["models"]) == {"vib", "deterministic"}
    assert summary["models"]["vib"]["beta"] == 1e-3
    for name in ("figure3", "figure4b", *summary["figures"]):
        png = (out / summary["figures"][name]).read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
    # Figure 3 shows the outcome colours of the attacks it draws, and only those.
    drawn = set()
    for run in ("vib", "deterministic"):
        ex = read_record(attacks["targeted"], run)["per_example"]
        drawn |= {rf.cell_outcome(y, p, t)
                  for y, p, t in zip(ex["labels"], ex["predicted"], ex["targets"], strict=True)}
    pixels = mpimg.imread(out / summary["figures"]["figure3"])[..., :3]
    for outcome, colour in rf.OUTCOME_COLOURS.items():
        count = np.sum(np.all(np.abs(pixels - np.asarray(colour)) < 0.03, axis=-1))
        assert (count > 1000) if outcome in drawn else (count < 20), (outcome, count, drawn)
    every = json.loads((out / "attack_summaries.json").read_text())
    assert set(every) == {"targeted", "untargeted"}
    # A further experiment directory joins the summaries and Figure 4(b).
    more = tmp_path / "more"
    proc = run_tool(FIGURES, f"--untargeted_dir={attacks['untargeted']}",
                    f"--summary_dirs={attacks['targeted']}", f"--output_dir={more}")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads((more / "attack_summaries.json").read_text())) == {
        "targeted", "untargeted"}
    assert (more / "figure4b_accuracy_under_attack.png").read_bytes().startswith(PNG_SIGNATURE)
    vib = every["untargeted"]["vib"]
    assert vib["redraws"] == robustness.REDRAWS and vib["params"]["max_iterations"] == 40
    assert vib["n"] == NUM_IMAGES and every["targeted"]["deterministic"]["redraws"] is None
    # The directories gone: Figure 4(b) is redrawn, identical, from the earlier summaries.
    gone, again = tmp_path / "gone", tmp_path / "again"
    proc = run_tool(FIGURES, f"--targeted_dir={gone / 'targeted'}",
                    f"--untargeted_dir={gone / 'untargeted'}", f"--earlier_results={out}",
                    f"--output_dir={again}")
    assert proc.returncode == 0, proc.stderr
    assert "untargeted: from earlier results: deterministic, vib" in proc.stdout
    name = "figure4b_accuracy_under_attack.png"
    assert (again / name).read_bytes() == (out / name).read_bytes()
    proc = run_tool(FIGURES, f"--targeted_dir={gone / 'targeted'}", f"--earlier_results={out}",
                    f"--output_dir={tmp_path / 'refused'}")
    assert proc.returncode == 2 and "no given directory names: untargeted" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--attack=deepfool"], "unknown attack 'deepfool'"),
    (["--num_images=0"], "--num_images must be an integer >= 1"),
    (["--model_dirs=/nonexistent/run"], "/nonexistent/run does not exist"),
    (["--target_class=1"], "--target_class needs --targeted"),
    (["--attack=pgd", "--eps=0.1", "--eps_iter=0.5"], "--eps_iter must be in (0, eps=0.1]"),
    (["--success_samples=100", "--attack_samples=0"], "--success_samples needs a sampling"),
    (["--success_samples=-1"], "--success_samples must be an integer >= 0"),
])
def test_bad_input_exits_2_with_a_message(args, message, tmp_path):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    defaults = [f"--model_dirs={model_dir}", f"--output_dir={tmp_path / 'out'}"]
    proc = run_tool(ATTACK, *defaults, *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "attack: error:" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_bad_run_directory_is_rejected_before_any_attack(runs, tmp_path):
    config = AttackConfig(num_images=NUM_IMAGES)
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    with pytest.raises(ValueError, match="config.json missing"):
        robustness.prepare_jobs([runs["vib"], str(empty)], config, str(tmp_path / "out"))
    with pytest.raises(ValueError, match="only 1000 test images"):
        robustness.prepare_jobs([runs["vib"]], AttackConfig(num_images=1001),
                                str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ logits_fn of a model
@pytest.fixture(scope="module")
def vib_model():
    keras.utils.set_random_seed(0)
    return build_model(tiny_model_config("vib"))


def images(n: int = 5) -> tf.Tensor:
    return tf.constant(np.random.default_rng(0).uniform(size=(n, 28, 28, 1)), tf.float32)


def test_vib_logits_fn_is_log_mean_softmax_of_logit_samples(vib_model):
    """12 samples of the logits' Gaussian (its law is checked in test_logit_gaussian.py),
    drawn from stateless normals keyed by (seed, call number)."""
    x = images()
    logits_fn = attack_logits_fn(vib_model, 12, seed=5)
    got = logits_fn(x).numpy()
    mean, factor = logit_gaussian(vib_model, x)
    eps = tf.random.stateless_normal([5, 12, factor.shape[1]], seed=[5, 1]).numpy()
    sample_logits = (mean.numpy()[:, None, :] + eps @ factor.numpy()).astype(np.float64)
    softmax = np.exp(sample_logits - sample_logits.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    np.testing.assert_allclose(got, np.log(softmax.mean(axis=1)), rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits_fn(x).numpy(), got), "12 fresh samples must differ"


def test_vib_mean_mode_is_log_softmax_of_decoded_mean(vib_model):
    x = images()
    logits_fn = attack_logits_fn(vib_model, 0)
    expected = tf.nn.log_softmax(vib_model.decoder(vib_model.posterior(x).mean())).numpy()
    np.testing.assert_allclose(logits_fn(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tf.function(logits_fn)(x).numpy(), expected, rtol=1e-5,
                               atol=1e-6)


def test_logits_fns_run_inside_tf_function(vib_model):
    x = images(3)
    log_probs = tf.function(attack_logits_fn(vib_model, 12))(x).numpy()
    assert log_probs.shape == (3, 10) and np.all(np.isfinite(log_probs))
    # A log mean softmax is a normalised log-distribution.
    np.testing.assert_allclose(np.log(np.exp(log_probs).sum(-1)), 0.0, atol=1e-5)
    for model in ("deterministic", "dropout"):
        config = tiny_model_config(model)
        if model == "dropout":
            config = ModelConfig(**{**config.to_dict(), "dropout_rate": 0.5})
        classifier = build_model(config)
        logits_fn = attack_logits_fn(classifier, 12)
        expected = classifier.logits(x).numpy()
        np.testing.assert_allclose(logits_fn(x).numpy(), expected, rtol=1e-6)
        np.testing.assert_allclose(tf.function(logits_fn)(x).numpy(), expected, rtol=1e-5)


def test_logits_fn_rejects_negative_samples(vib_model):
    with pytest.raises(ValueError, match=">= 0"):
        attack_logits_fn(vib_model, -1)


# ------------------------------------------------------------------ images and targets
def test_random_targets_are_seeded_uniform_and_never_the_label():
    labels = np.random.default_rng(0).integers(0, 10, size=9000)
    targets = choose_targets(labels, seed=11)
    assert np.all(targets != labels) and targets.min() >= 0 and targets.max() <= 9
    np.testing.assert_array_equal(targets, choose_targets(labels, seed=11))
    assert np.mean(targets != choose_targets(labels, seed=12)) > 0.8
    offsets = np.bincount((targets - labels) % 10, minlength=10)
    assert offsets[0] == 0 and np.all(np.abs(offsets[1:] / 9000 - 1 / 9) < 0.02)


def test_fixed_target_class():
    np.testing.assert_array_equal(choose_targets(np.array([0, 0, 3]), 0, target_class=1),
                                  [1, 1, 1])
    with pytest.raises(ValueError, match="equals the label"):
        choose_targets(np.array([0, 1]), 0, target_class=1)


def test_select_indices():
    labels = np.array([3, 0, 1, 0, 0, 2])
    np.testing.assert_array_equal(select_indices(labels, 4, None), [0, 1, 2, 3])
    np.testing.assert_array_equal(select_indices(labels, 2, 0), [1, 3])
    with pytest.raises(ValueError, match="only 3 test images of class 0"):
        select_indices(labels, 4, 0)


def test_attack_config_params_and_names():
    cw = AttackConfig(targeted=True, source_class=0, target_class=1, num_images=10)
    assert cw.experiment_name == "cw_l2_targeted_0to1"
    assert cw.params()["max_iterations"] == 10_000 and "eps" not in cw.params()
    pgd = AttackConfig(attack="pgd", eps=0.2)
    assert "max_iterations" not in pgd.params() and pgd.params()["eps"] == 0.2
    with pytest.raises(ValueError, match="--norm=3 is not available for fgsm"):
        AttackConfig(attack="fgsm", norm="3")
    with pytest.raises(ValueError) as error:  # every problem is reported at once
        AttackConfig(num_images=0, attack_samples=-1, max_iterations=0)
    for flag in ("--num_images", "--attack_samples", "--max_iterations"):
        assert flag in str(error.value)
