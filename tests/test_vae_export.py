"""VAE export: `bin/export` of a VAE run gives `encode`, `decode` and `reconstruct`, loaded and
checked in a fresh process that imports TensorFlow alone."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from deepvib.export import warmup
from deepvib.models import VAEConfig, build_model
from deepvib.training import run_dir
from deepvib.training.config import TrainConfig
from tests.helpers import forked

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
CONFIG = VAEConfig(model="jointvae", image_size=8, encoder_channels=(4,), encoder_dense=(16,),
                   encoder_linear=0, decoder_dense=16, decoder_channels=(), continuous_dim=3,
                   discrete_dims=(4, 2))

LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf

spec = json.load(open(sys.argv[1]))
loaded = tf.saved_model.load(spec["export"])
images, codes = tf.constant(np.load(spec["images"])), tf.constant(np.load(spec["codes"]))
out, errors = {}, {}
for name, fn in loaded.signatures.items():
    arg = "codes" if name == "decode" else "images"
    good = codes if arg == "codes" else images
    for k, v in fn(**{arg: good}).items():
        out[f"{name}/{k}"] = v.numpy()
    for bad in ("nan", "inf", "-inf"):
        x = good.numpy().copy()
        x[0, ...] = float(bad)
        try:
            fn(**{arg: tf.constant(x)})
            errors[f"{name}/{bad}"] = "accepted"
        except Exception as e:
            errors[f"{name}/{bad}"] = type(e).__name__
np.savez(spec["out"], **out)
extra = {"deepvib", "tensorflow_probability", "tf_keras"} & {m.split(".")[0] for m in sys.modules}
json.dump({"errors": errors, "extra": sorted(extra)}, open(spec["errors"], "w"))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    work = tmp_path_factory.mktemp("vae_export")
    run = str(work / "tiny_jointvae")
    keras.utils.set_random_seed(3)
    run_dir.prepare(TrainConfig(model=CONFIG, output_dir=run, epochs=1))
    model = build_model(CONFIG)
    run_dir.checkpoint_manager(run, tf.train.Checkpoint(model=model)).save(checkpoint_number=1)
    result = forked.run(
        [sys.executable, os.path.join(ROOT, "bin", "export"), f"--model_dir={run}",
         f"--export_dir={work / 'exports'}"], cwd=ROOT, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr
    path = str(work / "exports" / "tiny_jointvae" / "1")
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(5, 8, 8, 1)).astype(np.float32)
    codes = rng.normal(size=(5, 3 + 4 + 2)).astype(np.float32)
    np.save(work / "images.npy", images)
    np.save(work / "codes.npy", codes)
    spec = {"export": path, "images": str(work / "images.npy"), "codes": str(work / "codes.npy"),
            "out": str(work / "out.npz"), "errors": str(work / "errors.json")}
    (work / "spec.json").write_text(json.dumps(spec))
    fresh = subprocess.run([sys.executable, "-c", LOADER, str(work / "spec.json")], env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    loaded, _ = run_dir.load_model(run)
    return {"path": path, "stdout": result.stdout, "out": dict(np.load(work / "out.npz")),
            "errors": json.loads((work / "errors.json").read_text()), "model": loaded,
            "images": images, "codes": codes}


def test_vae_export_has_encode_decode_reconstruct_and_stands_alone(exported):
    assert "(deterministic)" in exported["stdout"]
    assert "signatures: encode, decode, reconstruct" in exported["stdout"]
    assert exported["errors"]["extra"] == []  # TensorFlow alone served it


def test_vae_export_equals_the_in_memory_model(exported):
    out, model = exported["out"], exported["model"]
    x, codes = tf.constant(exported["images"]), tf.constant(exported["codes"])
    z_posterior, _ = model.posteriors(x)
    np.testing.assert_allclose(out["encode/continuous_mean"], z_posterior.mean(), atol=1e-5)
    np.testing.assert_allclose(out["encode/continuous_scale"], z_posterior.stddev(), atol=1e-5)
    probs = np.concatenate([p.numpy() for p in model.discrete_probabilities(x)], axis=-1)
    np.testing.assert_allclose(out["encode/discrete_probabilities"], probs, atol=1e-5)
    np.testing.assert_allclose(out["encode/discrete_probabilities"][:, :4].sum(-1), 1, rtol=1e-5)
    np.testing.assert_allclose(out["decode/probabilities"], model.decode(codes), atol=1e-5)
    np.testing.assert_allclose(out["reconstruct/probabilities"], model.reconstruct(x), atol=1e-5)
    assert out["reconstruct/probabilities"].shape == (5, 8, 8, 1)


def test_every_vae_signature_rejects_non_finite_input(exported):
    errors = exported["errors"]["errors"]
    assert len(errors) == 9
    assert all(e != "accepted" for e in errors.values()), errors


def test_vae_warmup_requests_cover_every_signature(exported):
    logs = warmup.read_warmup(exported["path"])
    names = sorted(log.predict_log.request.model_spec.signature_name for log in logs)
    assert names == ["decode"] * 2 + ["encode"] * 2 + ["reconstruct"] * 2
    decode = [log for log in logs if log.predict_log.request.model_spec.signature_name
              == "decode"][0]
    assert tf.make_ndarray(decode.predict_log.request.inputs["codes"]).shape[1:] == (9,)
